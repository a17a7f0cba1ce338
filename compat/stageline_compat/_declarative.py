"""The asyncio-era declarative objects: futures, positional arguments, any object as content."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, TypeVar, cast, overload

import stageline
from stageline import (
    DownloaderFactoryLike,
    DownloaderLike,
    DownloadResultLike,
    InvalidTypeError,
    PipelineError,
)
from stageline.download import current_downloader_factory
from stageline.models import Artifact, Content, Remote

from ._stage import require_asyncio

__all__ = ["DeclarativeArtifact", "DeclarativeContent", "RemoteDownloads"]

_ResultT = TypeVar("_ResultT", bound=DownloadResultLike)


class DeclarativeContent(stageline.DeclarativeContent):
    """``stageline.DeclarativeContent`` with the asyncio era's future.

    ``content`` may be any object (a plain object or a mock in a unit test); stages that
    save it need a :class:`stageline.models.Content`. Besides ``await d.resolution()``,
    ``d.get_or_create_future()`` returns an ``asyncio.Future`` that gets the saved content
    when the item is resolved.

    Args:
        content: the content unit (any object but None).
        d_artifacts: its declarative artifacts.
        extra_data: free-form data for the plugin's own stages.
        does_batch: False makes every batch the item joins go at once (the oldest form of
            "this item will be awaited").
        future: an ``asyncio.Future`` to fulfil with the saved content (the oldest form
            of :meth:`get_or_create_future`); it is the item's future from then on.

    Raises:
        InvalidValueError: (a ``ValueError``) when ``content`` is None.
    """

    # Slots, as the native class has: an item is made per unit, inside the sync's timed path.
    __slots__ = ("_batch_wake", "_batches", "_future")

    def __init__(
        self,
        content: Any,
        d_artifacts: Iterable[stageline.DeclarativeArtifact] | None = None,
        extra_data: dict[str, Any] | None = None,
        does_batch: bool = True,
        future: asyncio.Future[Any] | None = None,
    ) -> None:
        _native_init(self, cast(Content, content), d_artifacts, extra_data)
        self._future: asyncio.Future[Any] | None = None
        self._batch_wake: Callable[[], None] | None = None
        self._batches = does_batch
        if future is not None:
            self._future = future
            self._watch(future)

    @property
    def future(self) -> asyncio.Future[Any] | None:
        """The item's future, once :meth:`get_or_create_future` made it (or it was given)."""
        return self._future

    @property
    def does_batch(self) -> bool:
        """False while the item is awaited (its future exists, or ``resolution()`` is
        awaited) and is not resolved, or when it was made with ``does_batch=False``: a
        batch holding it goes at once."""
        if self._future is None and self._batches:
            return _native_does_batch(self)
        return self._batches and self.resolved

    def enter_batch(self, wake: Callable[[], None]) -> None:
        """Keep ``wake`` for :meth:`get_or_create_future` too (see the item protocol)."""
        super().enter_batch(wake)
        self._batch_wake = wake

    def resolve(self) -> None:
        """Mark the item resolved, wake its waiters and give its future the content."""
        super().resolve()
        future = self._future
        if future is not None and not future.done():
            future.set_result(self.content)

    def get_or_create_future(self) -> asyncio.Future[Any]:
        """The item's ``asyncio.Future``, resolved with the saved content; made on first call.

        Making it counts as awaiting the item: a batch holding it goes at once, as with
        ``resolution()``. If the pipeline ends without resolving the item, the future gets
        the :class:`~stageline.PipelineError` that ``resolution()`` would raise.

        Raises:
            UsageError: (a ``RuntimeError``) called outside a running asyncio event loop.
        """
        future = self._future
        if future is not None:
            return future
        require_asyncio("DeclarativeContent.get_or_create_future()")
        loop = asyncio.get_running_loop()
        future = self._future = loop.create_future()
        self._watch(future)
        if self._batch_wake is not None:
            self._batch_wake()
        return future

    def _watch(self, future: asyncio.Future[Any]) -> None:
        if self.resolved:
            future.set_result(self.content)
            return
        # A task awaits the item the native way, so that the pipeline it travels in
        # answers for it (a PipelineError rather than a future pending forever).
        watcher = future.get_loop().create_task(self._settle(future))
        future.add_done_callback(lambda done: watcher.cancel() if done.cancelled() else None)

    async def _settle(self, future: asyncio.Future[Any]) -> None:
        try:
            content = await self.resolution()
        except PipelineError as exc:
            if not future.done():
                future.set_exception(exc)
        else:
            if not future.done():
                future.set_result(content)


#: The native class's initializer and ``does_batch``, called without a super() lookup:
#: both run once per item (``does_batch`` once per batching stage), like the native ones.
_native_init: Final = stageline.DeclarativeContent.__init__
_native_does_batch: Final = cast(
    "Callable[[stageline.DeclarativeContent], bool]",
    inspect.getattr_static(stageline.DeclarativeContent, "does_batch").fget,
)


class RemoteDownloads:
    """Downloads the asyncio-era way: each through its remote's ``get_downloader(url=...)``.

    :meth:`DeclarativeArtifact.download` and this package's ``ArtifactDownloader`` use it
    when they are given no factory, so that a plugin's (or a test's) ``get_downloader``
    makes the downloader. A remote without one (a plain :class:`stageline.models.Remote`)
    is served by the downloader factory open in context
    (:func:`stageline.download.current_downloader_factory`).
    """

    def get_downloader(
        self,
        remote: Remote,
        *,
        url: str,
        expected_digests: Mapping[str, str] | None = None,
        expected_size: int | None = None,
    ) -> DownloaderLike[Any]:
        """The remote's downloader for ``url``, with these expectations.

        Raises:
            UnsafeURLError: (from the factory) a url the remote may not fetch.
        """
        get_downloader = getattr(remote, "get_downloader", None)
        digests = dict(expected_digests) if expected_digests else None
        if callable(get_downloader):
            downloader: DownloaderLike[Any] = get_downloader(
                url=url, expected_digests=digests, expected_size=expected_size
            )
            return downloader
        return current_downloader_factory().get_downloader(
            remote, url=url, expected_digests=digests, expected_size=expected_size
        )


_REMOTE_DOWNLOADS = RemoteDownloads()


class DeclarativeArtifact(stageline.DeclarativeArtifact):
    """``stageline.DeclarativeArtifact`` taking the asyncio era's positional arguments.

    ``DeclarativeArtifact(artifact, url, relative_path, remote, extra_data,
    deferred_download, urls)``. ``artifact`` may be any object with the attributes the
    stages read (``saved``, ``file``, ``size``, ``digests()``, …), a mock in a unit test.
    ``url`` reads as the first of ``urls``. ``deferred_download`` defaults to None (follow
    the remote's policy), not False.

    Raises:
        ValueError: see :class:`stageline.DeclarativeArtifact`.
    """

    __slots__ = ()

    def __init__(
        self,
        artifact: Any = None,
        url: str | None = None,
        relative_path: str | None = None,
        remote: Remote | None = None,
        extra_data: dict[str, Any] | None = None,
        deferred_download: bool | None = None,
        urls: Iterable[str] | None = None,
    ) -> None:
        super().__init__(
            artifact=cast(Artifact, artifact),
            url=url,
            urls=urls,
            relative_path=cast(str, relative_path),
            remote=remote,
            extra_data={} if extra_data is None else extra_data,
            deferred_download=deferred_download,
        )

    @overload
    async def download(self, factory: None = None) -> DownloadResultLike: ...

    @overload
    async def download(self, factory: DownloaderFactoryLike[_ResultT]) -> _ResultT: ...

    async def download(
        self, factory: DownloaderFactoryLike[Any] | None = None
    ) -> DownloadResultLike:
        """Download the artifact, by default through ``remote.get_downloader(url=...)``.

        Without a ``factory``, the downloader comes from the remote's ``get_downloader``
        (see :class:`RemoteDownloads`); otherwise as in
        :meth:`stageline.DeclarativeArtifact.download`, which also lists the errors.

        Returns:
            The result of the successful download.

        Raises:
            DownloadError: every url failed (see the native method).
            InvalidTypeError: (a ``TypeError``) ``factory`` has no ``get_downloader``.
        """
        if factory is None:
            return await super().download(_REMOTE_DOWNLOADS)
        if not callable(getattr(factory, "get_downloader", None)):
            raise InvalidTypeError(
                f"DeclarativeArtifact.download(factory): the factory must have a "
                f"get_downloader(remote, url=...) method, got {factory!r}"
            )
        return await super().download(factory)
