"""Declarative objects: what a first stage says it found upstream."""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar, overload

import attrs

from ._exceptions import (
    DownloaderFactoryError,
    DownloadError,
    ForbiddenDigestError,
    InvalidValueError,
    redact_url,
)
from ._resolvable import Resolvable, pipeline_context
from ._slots import slot_setter
from .models import Artifact, Content, Remote, check_relative_path

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
            raise InvalidValueError(f"{type(instance).__name__}: {name} is required, got None")

    return check


def _safe_relative_path(instance: object, attribute: attrs.Attribute[Any], value: str) -> None:
    check_relative_path(value, context=f"{type(instance).__name__}.{attribute.name}")


def _one_url(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidValueError(f"DeclarativeArtifact: url must be a non-empty str, got {value!r}")
    return value


def _mirrors(value: Iterable[str] | None) -> tuple[str, ...] | None:
    """``urls`` as a tuple, refusing what cannot be a list of mirrors."""
    if value is None:
        return None
    if isinstance(value, str | bytes):
        # A str is iterable: it would become one "mirror" per character.
        raise InvalidValueError(
            f"DeclarativeArtifact: urls must be a list of urls, got the string {value!r}; "
            "for a single url pass url=... (or urls=[...])"
        )
    urls = tuple(value)
    if not urls:
        raise InvalidValueError(
            "DeclarativeArtifact: urls is empty; give at least one url (or pass url=...)"
        )
    for url in urls:
        if not isinstance(url, str) or not url:
            raise InvalidValueError(
                f"DeclarativeArtifact: every url in urls must be a non-empty str, got {url!r} "
                f"in {urls!r}"
            )
    return urls


def _url_set(instance: DeclarativeArtifact, attribute: object, value: str) -> str:
    """Setting ``url`` makes it the only mirror."""
    object.__setattr__(instance, "urls", (_one_url(value),))
    return value


def _urls_set(
    instance: DeclarativeArtifact, attribute: object, value: tuple[str, ...] | None
) -> tuple[str, ...]:
    """Setting ``urls`` (already converted) makes ``url`` read as the first of them."""
    if value is None:
        raise InvalidValueError("DeclarativeArtifact: urls cannot be set to None")
    object.__setattr__(instance, "url", value[0])
    return value


@attrs.define(eq=False, slots=True, kw_only=True, init=False)
class DeclarativeArtifact:
    """An artifact a content unit needs, and where to get it.

    Args:
        artifact: the (usually unsaved) artifact, with whatever size and digests the
            upstream metadata told; they become expectations for the download.
        url: where to download it; afterwards it reads as the first of ``urls``.
        urls: mirrors, tried in order (a list or tuple of url strings, not one string);
            give either ``url`` or ``urls``, not both (unless ``url`` is the first of
            ``urls``, as ``attrs.evolve`` passes them). Afterwards it holds every url:
            ``(url,)`` when ``url`` was given. Setting either attribute later keeps the
            other in step.
        relative_path: the path of the file inside the content unit; it must be a safe
            relative path (see :func:`stageline.models.check_relative_path`).
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
    url: str | None = attrs.field(default=None, on_setattr=_url_set)
    urls: tuple[str, ...] | None = attrs.field(
        default=None,
        converter=_mirrors,
        on_setattr=attrs.setters.pipe(attrs.setters.convert, _urls_set),
    )
    # Checked in full when set later too, not only when made: ContentSaver takes the path
    # as it is for the content artifact it saves.
    relative_path: str = attrs.field(validator=[_required("relative_path"), _safe_relative_path])
    remote: Remote | None = None
    extra_data: dict[str, Any] = attrs.field(factory=dict)
    deferred_download: bool | None = None
    # (content pk, relative path, content artifact pk) of the file once ContentSaver saved
    # it in this sync, for RemoteArtifactSaver (see note_saved_file); None before.
    _saved_file: tuple[int, str, int] | None = attrs.field(default=None, init=False, repr=False)

    # Written by hand rather than generated: a first stage makes one per file inside the
    # sync's timed path, and attrs' __init__ (each field through its hooks, then the
    # validators and a post-init pass) cost 4.7 us against 1.6 us here. The checks, their
    # order and their messages are the generated one's: the urls converter, the required
    # fields, then url/urls, the path and the remote.
    def __init__(
        self,
        *,
        artifact: Artifact,
        url: str | None = None,
        urls: Iterable[str] | None = None,
        relative_path: str,
        remote: Remote | None = None,
        extra_data: dict[str, Any] | None = None,
        deferred_download: bool | None = None,
    ) -> None:
        mirrors = None if urls is None else _mirrors(urls)
        if artifact is None:
            raise InvalidValueError(f"{type(self).__name__}: artifact is required, got None")
        if relative_path is None:
            raise InvalidValueError(f"{type(self).__name__}: relative_path is required, got None")
        if url is not None:
            _one_url(url)
            if mirrors is not None and mirrors[0] != url:
                raise InvalidValueError(
                    f"DeclarativeArtifact: give url or urls, not both (url={url!r}, "
                    f"urls={mirrors!r})"
                )
        if mirrors is not None:
            url = mirrors[0]
        elif url is not None:
            mirrors = (url,)
        else:
            raise InvalidValueError(
                f"DeclarativeArtifact for {relative_path!r}: one of url or urls is required"
            )
        check_relative_path(relative_path, context="DeclarativeArtifact.relative_path")
        if remote is None and artifact.file is None:
            raise InvalidValueError(
                f"DeclarativeArtifact for {relative_path!r}: a remote is required "
                "unless the artifact already has a file"
            )
        # The slots' own setters: the on-setattr hooks keep url and urls in step only
        # after construction, as attrs' __init__ left them out too.
        _SET_ARTIFACT(self, artifact)
        _SET_URL(self, url)
        _SET_URLS(self, mirrors)
        _SET_RELATIVE_PATH(self, relative_path)
        _SET_REMOTE(self, remote)
        _SET_EXTRA_DATA(self, {} if extra_data is None else extra_data)
        _SET_DEFERRED_DOWNLOAD(self, deferred_download)
        _SET_SAVED_FILE(self, None)

    @property
    def all_urls(self) -> tuple[str, ...]:
        """The mirrors in the order they are tried (the same as :attr:`urls`)."""
        assert self.urls is not None  # set by __attrs_post_init__
        return self.urls

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
            raise InvalidValueError(
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


_SET_ARTIFACT = slot_setter(DeclarativeArtifact, "artifact")
_SET_URL = slot_setter(DeclarativeArtifact, "url")
_SET_URLS = slot_setter(DeclarativeArtifact, "urls")
_SET_RELATIVE_PATH = slot_setter(DeclarativeArtifact, "relative_path")
_SET_REMOTE = slot_setter(DeclarativeArtifact, "remote")
_SET_EXTRA_DATA = slot_setter(DeclarativeArtifact, "extra_data")
_SET_DEFERRED_DOWNLOAD = slot_setter(DeclarativeArtifact, "deferred_download")
_SET_SAVED_FILE = slot_setter(DeclarativeArtifact, "_saved_file")


def note_saved_file(d_artifact: DeclarativeArtifact, content_pk: int, pk: int) -> None:
    """Record that ``d_artifact``'s file is saved as content artifact ``pk`` of content
    ``content_pk`` (ContentSaver, for RemoteArtifactSaver: see :func:`saved_file_pk`)."""
    _SET_SAVED_FILE(d_artifact, (content_pk, d_artifact.relative_path, pk))


def saved_file_pk(d_artifact: DeclarativeArtifact, content_pk: int) -> int | None:
    """The content artifact pk :func:`note_saved_file` recorded for ``d_artifact`` as a
    file of content ``content_pk``, or None: none was recorded, or the unit or the path
    changed since (a content artifact is the file at one path of one unit)."""
    saved = d_artifact._saved_file
    if saved is None or saved[0] != content_pk or saved[1] != d_artifact.relative_path:
        return None
    return saved[2]


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
        InvalidValueError: (a ``ValueError``) when ``content`` is None.
    """

    # No validators or converters on the fields: they would give every instance attrs'
    # __setattr__ hook, a Python call on each assignment, the engine's included. The
    # defaults serve plugins' attrs subclasses, whose generated __init__ then calls
    # __attrs_post_init__ for the check this class's own __init__ makes inline.
    content: Content
    d_artifacts: list[DeclarativeArtifact] = attrs.field(factory=list)
    extra_data: dict[str, Any] = attrs.field(factory=dict)

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
            raise InvalidValueError("DeclarativeContent: content is required, got None")
        self.content = content
        self.d_artifacts = [] if d_artifacts is None else list(d_artifacts)
        self.extra_data = {} if extra_data is None else extra_data
        # Resolvable's fields, as its generated initializer sets them, without the call
        # (tests/test_declarative.py checks that this stays in step with Resolvable).
        self.pipeline = _current_pipeline()
        self._resolved = False
        self._wake = None
        self._waiting = None

    def __attrs_post_init__(self) -> None:
        if self.content is None:
            raise InvalidValueError(f"{type(self).__name__}: content is required, got None")

    async def resolution(self) -> Content:
        """Wait until this item is resolved and return its (saved) content.

        Raises:
            PipelineError: the pipeline ended (finished, failed or was cancelled) without
                resolving this item; ``__cause__`` holds the pipeline's error, if any.
        """
        await self.wait_resolved()
        return self.content


#: What Resolvable's ``pipeline`` field starts as: the pipeline of the running stage.
_current_pipeline: Final = pipeline_context.get
