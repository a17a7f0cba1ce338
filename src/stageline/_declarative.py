"""Declarative objects: what a first stage says it found upstream."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final

import attrs

from ._exceptions import DownloadError, ForbiddenDigestError
from ._resolvable import Resolvable
from .models import Artifact, Content, Remote

if TYPE_CHECKING:
    from .download import DownloadResult

__all__ = ["DeclarativeArtifact", "DeclarativeContent"]


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
        deferred_download: True to record where the file is without downloading it
            (on-demand and streamed policies).

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
    deferred_download: bool = False

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

    async def download(self) -> DownloadResult:
        """Download the artifact and replace :attr:`artifact` with the downloaded one.

        The artifact's known size and digests are the expectations. Mirrors in ``urls``
        are tried in order; the first success wins.

        Returns:
            The result of the successful download.

        Raises:
            DownloadError: the error of the last url tried, when every url failed, with a
                note (``__notes__``) per earlier url saying how it failed.
            ForbiddenDigestError: at once, when an expected digest is of a kind not allowed.
            ValueError: when there is no remote to download with.
            RuntimeError: when the DownloaderFactory was closed before or while the
                download ran (no other mirror is tried).
        """
        if self.remote is None:
            raise ValueError(
                f"DeclarativeArtifact for {self.relative_path!r} has no remote to download with"
            )
        expected_digests = self.artifact.digests()
        urls = self.all_urls
        errors: list[tuple[str, DownloadError]] = []
        for url in urls:
            try:
                # A mirror no downloader handles (unknown scheme, malformed url) is skipped
                # like a failing one; a refused expectation would be refused by every mirror.
                downloader = self.remote.get_downloader(
                    url=url, expected_digests=expected_digests, expected_size=self.artifact.size
                )
                result = await downloader.run()
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
                f"mirror {number} of {len(urls)}, {failed_url}, {how}: "
                f"{type(error).__name__}: {error}"
            )
        raise last_error


@attrs.define(eq=False, slots=True, init=False)
class DeclarativeContent(Resolvable):
    """A content unit found upstream, with the artifacts it needs.

    Args:
        content: the (usually unsaved) content unit; required.
        d_artifacts: its declarative artifacts (copied into a new list).
        extra_data: free-form data for the plugin's own stages.

    ``await d.resolution()`` returns the saved content once the item has passed
    ``ResolveContentFutures`` (or a stage called ``d.resolve()``). Awaiting an item that
    waits in a partly filled batch makes that batch flush, so it never deadlocks.

    Raises:
        ValueError: when ``content`` is None.
    """

    content: Content
    d_artifacts: list[DeclarativeArtifact]
    extra_data: dict[str, Any]

    # Written by hand rather than generated: a first stage makes one per unit inside the
    # sync's timed path, and attrs' validator, converters and per-field setattr hooks
    # cost several times the rest (docs/benchmarks.md, "Items made in the timed region").
    def __init__(
        self,
        content: Content,
        d_artifacts: Iterable[DeclarativeArtifact] | None = None,
        extra_data: dict[str, Any] | None = None,
    ) -> None:
        if content is None:
            raise ValueError("DeclarativeContent: content is required, got None")
        self.content = content
        self.d_artifacts = [] if d_artifacts is None else list(d_artifacts)
        self.extra_data = {} if extra_data is None else extra_data
        _resolvable_init(self)

    async def resolution(self) -> Content:
        """Wait until this item is resolved and return its (saved) content.

        Raises:
            PipelineError: the pipeline ended (finished, failed or was cancelled) without
                resolving this item; ``__cause__`` holds the pipeline's error, if any.
        """
        await self.wait_resolved()
        return self.content


#: Resolvable's own (attrs-generated) initializer, called without a super() lookup.
_resolvable_init: Final = Resolvable.__init__
