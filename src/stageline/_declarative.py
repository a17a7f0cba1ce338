"""Declarative objects: what a first stage says it found upstream."""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar, overload

import attrs

from ._exceptions import (
    DownloaderFactoryError,
    DownloadError,
    ForbiddenDigestError,
    redact_url,
)
from ._resolvable import Resolvable
from .models import Artifact, Content, Remote

__all__ = [
    "DeclarativeArtifact",
    "DeclarativeContent",
    "DownloadResultLike",
    "DownloaderFactoryLike",
    "DownloaderLike",
    "downloader_factory_var",
]


class DownloadResultLike(Protocol):
    """What :meth:`DeclarativeArtifact.download` needs of a finished download.

    :class:`stageline.download.DownloadResult` is one.
    """

    @property
    def url(self) -> str:
        """The url that was downloaded."""
        ...

    @property
    def path(self) -> Path:
        """The file holding the validated bytes."""
        ...

    @property
    def artifact_attributes(self) -> Mapping[str, int | str]:
        """``size`` and every computed digest, as ``Artifact`` takes them."""
        ...


_ResultT_co = TypeVar("_ResultT_co", bound=DownloadResultLike, covariant=True)
_ResultT = TypeVar("_ResultT", bound=DownloadResultLike)


class DownloaderLike(Protocol[_ResultT_co]):
    """What :meth:`DeclarativeArtifact.download` needs of a downloader: ``run()``."""

    async def run(self) -> _ResultT_co:
        """Download, validate and return the result; raise a ``DownloadError`` on failure."""
        ...


class DownloaderFactoryLike(Protocol[_ResultT_co]):
    """What :meth:`DeclarativeArtifact.download` needs of a downloader factory.

    :class:`stageline.download.DownloaderFactory` is one; so is anything with this
    ``get_downloader`` (a plugin's own factory, a test double). Defined here, not
    imported, because declarative objects sit below the download layer.
    """

    def get_downloader(
        self,
        remote: Remote,
        *,
        url: str,
        expected_digests: Mapping[str, str] | None = None,
        expected_size: int | None = None,
    ) -> DownloaderLike[_ResultT_co]:
        """A downloader for ``url`` with ``remote``'s settings and these expectations."""
        ...


#: The downloader factory open in the current context: ``async with DownloaderFactory()``
#: sets it for the block (and the tasks started inside), and
#: :meth:`DeclarativeArtifact.download` uses it when it is given none. Code that downloads
#: should be handed its factory instead of reading this.
downloader_factory_var: contextvars.ContextVar[DownloaderFactoryLike[Any] | None] = (
    contextvars.ContextVar("stageline_downloader_factory", default=None)
)


def _required(name: str) -> Any:
    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is None:
            raise ValueError(f"{type(instance).__name__}: {name} is required, got None")

    return check


@attrs.define(eq=False, slots=True, kw_only=True)
class DeclarativeArtifact:
    """An artifact a content unit needs, and where to get it.

    Args:
        artifact: the (usually unsaved) artifact, with whatever size and digests the
            upstream metadata told; they become expectations for the download.
        url: where to download it.
        urls: mirrors, tried in order; give either ``url`` or ``urls``, not both.
        relative_path: the path of the file inside the content unit.
        remote: the remote whose settings the download uses; required unless the
            artifact already has a file (then nothing needs downloading).
        extra_data: free-form data for the plugin's own stages.
        deferred_download: whether to record where the file is without downloading it.
            None (the default) follows the remote's policy: deferred when it is
            ``on_demand`` or ``streamed``. False downloads it whatever the policy (an index
            file the first stage must read); True never downloads it during the sync.

    Raises:
        ValueError: when a rule above is broken; the message names the argument.
    """

    artifact: Artifact = attrs.field(validator=_required("artifact"))
    url: str | None = None
    urls: Sequence[str] | None = attrs.field(
        default=None, converter=attrs.converters.optional(tuple)
    )
    relative_path: str = attrs.field(validator=_required("relative_path"))
    remote: Remote | None = None
    extra_data: dict[str, Any] = attrs.field(factory=dict)
    deferred_download: bool | None = None

    def __attrs_post_init__(self) -> None:
        if self.url is not None and self.urls is not None:
            raise ValueError(
                "DeclarativeArtifact: give url or urls, not both "
                f"(url={self.url!r}, urls={self.urls!r})"
            )
        if self.url is None and not self.urls:
            raise ValueError(
                f"DeclarativeArtifact for {self.relative_path!r}: one of url or urls is required"
            )
        if not isinstance(self.relative_path, str) or not self.relative_path:
            raise ValueError(
                "DeclarativeArtifact: relative_path must be a non-empty str, "
                f"got {self.relative_path!r}"
            )
        if self.remote is None and self.artifact.file is None:
            raise ValueError(
                f"DeclarativeArtifact for {self.relative_path!r}: a remote is required "
                "unless the artifact already has a file"
            )

    @property
    def all_urls(self) -> tuple[str, ...]:
        """The url, or the mirrors in the order they are tried."""
        if self.url is not None:
            return (self.url,)
        assert self.urls is not None
        return tuple(self.urls)

    @overload
    async def download(self, factory: None = None) -> DownloadResultLike: ...

    @overload
    async def download(self, factory: DownloaderFactoryLike[_ResultT]) -> _ResultT: ...

    async def download(
        self, factory: DownloaderFactoryLike[Any] | None = None
    ) -> DownloadResultLike:
        """Download the artifact and replace :attr:`artifact` with the downloaded one.

        The artifact's known size and digests are the expectations. Mirrors in ``urls``
        are tried in order; the first success wins.

        Args:
            factory: makes the downloader (``factory.get_downloader(remote, url=…,
                expected_digests=…, expected_size=…)``), usually the sync's
                :class:`~stageline.download.DownloaderFactory`. None uses the factory
                open in the current context (``async with DownloaderFactory():``);
                stages always pass theirs.

        Returns:
            The result of the successful download (a
            :class:`~stageline.download.DownloadResult` with stageline's factory).

        Raises:
            DownloadError: the error of the last url tried, when every url failed, with a
                note (``__notes__``) per earlier url saying how it failed; a url the
                remote may not fetch (``UnsafeURLError``) fails like any other.
            ForbiddenDigestError: at once, when an expected digest is of a kind not allowed.
            MalformedDigestError: at once, when an expected digest is not hex of its
                kind's length.
            ValueError: when there is no remote to download with.
            DownloaderFactoryError: when ``factory`` is None and no factory is open.
            DownloaderFactoryClosed: when the factory was closed before or while the
                download ran (no other mirror is tried).
        """
        if self.remote is None:
            raise ValueError(
                f"DeclarativeArtifact for {self.relative_path!r} has no remote to download with"
            )
        if factory is None:
            factory = downloader_factory_var.get()
            if factory is None:
                raise DownloaderFactoryError(
                    f"cannot download {self.relative_path!r}: no DownloaderFactory is open; "
                    "pass one (await d_artifact.download(factory)) or download inside "
                    "'async with DownloaderFactory() as factory:'"
                )
        expected_digests = self.artifact.digests()
        urls = self.all_urls
        errors: list[tuple[str, DownloadError]] = []
        for url in urls:
            try:
                # A mirror no downloader handles (unknown scheme, malformed url) or that the
                # remote may not fetch is skipped like a failing one; a refused
                # expectation would be refused by every mirror.
                downloader = factory.get_downloader(
                    self.remote,
                    url=url,
                    expected_digests=expected_digests,
                    expected_size=self.artifact.size,
                )
                result: DownloadResultLike = await downloader.run()
            except ForbiddenDigestError:
                raise
            except DownloadError as exc:
                errors.append((url, exc))
                continue
            self.artifact = Artifact(file=result.path, **dict(result.artifact_attributes))  # type: ignore[arg-type]
            return result
        last_error = errors[-1][1]
        # The last error is raised; what the earlier mirrors did would otherwise be lost.
        for number, (failed_url, error) in enumerate(errors[:-1], start=1):
            how = "failed first" if number == 1 else "failed too"
            last_error.add_note(
                f"mirror {number} of {len(urls)}, {redact_url(failed_url)}, {how}: "
                f"{type(error).__name__}: {error}"
            )
        raise last_error


def _list_or_empty(value: Iterable[DeclarativeArtifact] | None) -> list[DeclarativeArtifact]:
    return [] if value is None else list(value)


def _dict_or_empty(value: dict[str, Any] | None) -> dict[str, Any]:
    return {} if value is None else value


@attrs.define(eq=False, slots=True)
class DeclarativeContent(Resolvable):
    """A content unit found upstream, with the artifacts it needs.

    Args:
        content: the (usually unsaved) content unit; required.
        d_artifacts: its declarative artifacts.
        extra_data: free-form data for the plugin's own stages.

    ``await d.resolution()`` returns the saved content once the item has passed
    ``ResolveContentFutures`` (or a stage called ``d.resolve()``). Awaiting an item that
    waits in a partly filled batch makes that batch flush, so it never deadlocks.

    Raises:
        ValueError: when ``content`` is None.
    """

    content: Content = attrs.field(validator=_required("content"))
    d_artifacts: list[DeclarativeArtifact] = attrs.field(factory=list, converter=_list_or_empty)
    extra_data: dict[str, Any] = attrs.field(factory=dict, converter=_dict_or_empty)

    async def resolution(self) -> Content:
        """Wait until this item is resolved and return its (saved) content.

        Raises:
            PipelineError: the pipeline ended (finished, failed or was cancelled) without
                resolving this item; ``__cause__`` holds the pipeline's error, if any.
        """
        await self._wait_resolved()
        return self.content
