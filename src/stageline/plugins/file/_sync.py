"""``sync_files``: one call that syncs a file repository, skipping it when nothing changed."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

import attrs

from ..._declarative import DeclarativeArtifact
from ..._exceptions import InvalidValueError, StoreError, redact_url
from ...models import Artifact, DownloadPolicy, Remote, Repository, RepositoryVersion
from ...progress import (
    DOWNLOADING_ARTIFACTS_CODE,
    DOWNLOADING_BYTES_CODE,
    ProgressReport,
    ProgressReporter,
    ProgressSnapshot,
    reporting_to,
)
from ...stages import DownloadFailurePolicy, OnError, SkippedUnit
from ...store import Store
from ...sync import DeclarativeVersion, Workspace
from ._content import MANIFEST_NAME
from ._first_stage import FileFirstStage
from ._state import SyncRecord, read_record, write_record

__all__ = [
    "DOWNLOADING_METADATA_CODE",
    "DOWNLOADING_METADATA_MESSAGE",
    "FileSyncResult",
    "manifest_url",
    "sync_files",
]

#: The progress report of the root manifest's download.
DOWNLOADING_METADATA_MESSAGE: Final = "Downloading Metadata"
DOWNLOADING_METADATA_CODE: Final = "sync.downloading.metadata"

logger = logging.getLogger("stageline.plugins.file")


def manifest_url(url: str) -> str:
    """The root manifest's url: ``url`` itself, or ``url + "PULP_MANIFEST"`` for a folder."""
    return url + MANIFEST_NAME if url.endswith("/") else url


@attrs.frozen(kw_only=True)
class FileSyncResult:
    """What :func:`sync_files` did.

    Attributes:
        repository: the repository's name.
        url: the root manifest's url (credentials masked).
        manifest_sha256: the root manifest's sha256.
        unchanged: True when the manifest and the options were those of the last sync of
            the repository, so the pipeline did not run.
        reasons: why the pipeline ran (empty when ``unchanged``): what differed from
            the last sync, or that it was forced.
        version: the version the sync made, or None (nothing changed, or ``unchanged``).
        latest_version: the repository's latest version after the sync.
        units: the entries the manifests declared (files and sub-repository manifests;
            0 when ``unchanged``).
        declared_bytes: the sum of their sizes.
        manifests: how many manifests were read (the root's and each sub-repository's).
        downloaded_files: the files downloaded (not deferred, not held already).
        downloaded_bytes: their bytes.
        skipped_units: with ``on_error="skip"``, the units left out, each with its error.
        seconds: how long the sync took.
    """

    repository: str
    url: str
    manifest_sha256: str
    unchanged: bool
    reasons: tuple[str, ...]
    version: RepositoryVersion | None
    latest_version: RepositoryVersion
    units: int = 0
    declared_bytes: int = 0
    manifests: int = 0
    downloaded_files: int = 0
    downloaded_bytes: int = 0
    skipped_units: tuple[SkippedUnit, ...] = ()
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON values (what ``stageline sync --json`` prints)."""
        return {
            "repository": self.repository,
            "url": self.url,
            "manifest_sha256": self.manifest_sha256,
            "unchanged": self.unchanged,
            "reasons": list(self.reasons),
            "version": None if self.version is None else self.version.number,
            "latest_version": self.latest_version.number,
            "content_count": self.latest_version.content_count,
            "added": 0 if self.version is None else self.version.added_count,
            "removed": 0 if self.version is None else self.version.removed_count,
            "units": self.units,
            "declared_bytes": self.declared_bytes,
            "manifests": self.manifests,
            "downloaded_files": self.downloaded_files,
            "downloaded_bytes": self.downloaded_bytes,
            "skipped_units": [
                {
                    "relative_path": getattr(skipped.content, "relative_path", None),
                    "urls": [redact_url(url) for url in skipped.urls],
                    "error": str(skipped.error),
                }
                for skipped in self.skipped_units
            ],
            "seconds": round(self.seconds, 3),
        }


class _DownloadCounts:
    """A reporter keeping the last counts of the downloader's reports."""

    def __init__(self) -> None:
        self.done: dict[str, int] = {}

    def started(self, report: ProgressSnapshot) -> None:
        self.updated(report)

    def updated(self, report: ProgressSnapshot) -> None:
        if report.code in (DOWNLOADING_ARTIFACTS_CODE, DOWNLOADING_BYTES_CODE):
            self.done[report.code] = report.done

    def finished(self, report: ProgressSnapshot) -> None:
        self.updated(report)


# The Remote fields remote_settings may set: all but those sync_files sets itself.
_SETTINGS: Final = frozenset(attrs.fields_dict(Remote)) - {"url", "name", "policy", "pk"}


def _policy(policy: DownloadPolicy | str) -> DownloadPolicy:
    try:
        return DownloadPolicy(policy)
    except ValueError:
        choices = ", ".join(repr(str(choice)) for choice in DownloadPolicy)
        raise InvalidValueError(
            f"sync_files: policy must be one of {choices}, got {policy!r}"
        ) from None


def _checked_settings(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    settings = dict(settings or {})
    unknown = sorted(set(settings) - _SETTINGS)
    if unknown:
        raise InvalidValueError(
            f"sync_files: remote_settings has {', '.join(map(repr, unknown))}, which "
            f"Remote does not take (or sync_files sets itself); use some of "
            f"{', '.join(sorted(_SETTINGS))}"
        )
    return settings


def _options(remote: Remote, mirror: bool) -> dict[str, Any]:
    """The options that decide what a sync of an unchanged manifest makes."""
    return {"url": redact_url(remote.url), "policy": str(remote.policy), "mirror": mirror}


def _reasons(
    record: SyncRecord | None,
    sha256: str,
    options: Mapping[str, Any],
    latest: int,
    *,
    force: bool,
) -> list[str]:
    """Why a sync cannot be skipped; empty when it can."""
    if force:
        return ["forced"]
    if record is None:
        return ["no earlier sync of this repository from a manifest is recorded"]
    reasons = []
    if record.manifest_sha256 != sha256:
        reasons.append(
            f"the manifest changed (sha256 {record.manifest_sha256[:12]}… → {sha256[:12]}…)"
        )
    for key, value in options.items():
        old = record.options.get(key)
        if old != value:
            reasons.append(f"{key} changed ({old!r} → {value!r})")
    if record.version_number != latest:
        reasons.append(
            f"the repository changed since (the last sync left version "
            f"{record.version_number}, the latest is {latest})"
        )
    if record.skipped_units:
        reasons.append(f"the last sync left {record.skipped_units} units out")
    return reasons


async def sync_files(
    url: str,
    repository: str,
    *,
    workspace: Workspace | None = None,
    mirror: bool = False,
    policy: DownloadPolicy | str = DownloadPolicy.IMMEDIATE,
    remote_settings: Mapping[str, Any] | None = None,
    on_error: OnError = "fail",
    max_skipped: int | None = None,
    force: bool = False,
    reporters: Iterable[ProgressReporter] = (),
    max_concurrent_content: int | None = None,
) -> FileSyncResult:
    """Sync the file repository at ``url`` into ``repository``; skip it when unchanged.

    ``url`` is the root manifest's url (``.../PULP_MANIFEST``), or its folder ending in
    ``/``; http(s) and file:// urls work. The manifest is downloaded first; when its
    sha256 and the options that decide the result (``url``, ``policy``, ``mirror``) are
    those of the last finished sync of the repository, and the repository has no newer
    version since, nothing else is done and the result says ``unchanged`` (``force=True``
    runs the pipeline anyway). Otherwise :class:`FileFirstStage` and the default
    pipeline run (see :class:`~stageline.DeclarativeVersion`), and the result's
    ``reasons`` say (and the ``stageline.plugins.file`` logger logs at INFO) what
    differed. A sync that left units out is never skipped after.

    Args:
        url: the root manifest's url, or its folder's (ending in ``/``).
        repository: the repository's name (created when missing).
        workspace: the store and storage; the default is stageline's home.
        mirror: True to make the new version hold exactly what the manifests list.
        policy: ``"immediate"``, ``"on_demand"`` or ``"streamed"``.
        remote_settings: other :class:`~stageline.models.Remote` fields (concurrency,
            retries, timeouts, headers, credentials, proxy, TLS). The remote is saved
            under the repository's name.
        on_error: ``"fail"`` or ``"skip"`` (leave out units whose files fail).
        max_skipped: with ``"skip"``, fail once more units than this failed.
        force: run the pipeline even when the manifest is unchanged.
        reporters: where progress goes (the manifest's download, "Parsing Metadata" and
            the default stages' reports).
        max_concurrent_content: at most this many units downloading at once (None: the
            default of :class:`~stageline.DeclarativeVersion`).

    Returns:
        What the sync did.

    Raises:
        InvalidValueError: (a ``ValueError``) a remote setting or ``policy`` is refused.
        StageConfigurationError: (a ``ValueError``) ``on_error``, ``max_skipped`` or
            ``max_concurrent_content`` is refused.
        ManifestError: a manifest line is malformed or names an unsafe path.
        DownloadError: the manifest or a file could not be downloaded (a subclass naming
            the url: ``HTTPStatusError``, ``DigestMismatch``, ``DownloadConnectionError``…).
        RepositoryBusyError: another sync of the repository ran for too long.
        StoreError: the database failed.
        StorageError: a file could not be stored.
    """
    workspace = workspace if workspace is not None else Workspace()
    remote = Remote(
        url=manifest_url(url),
        name=repository,
        policy=_policy(policy),
        **_checked_settings(remote_settings),
    )
    # Checked before anything is downloaded (DeclarativeVersion checks them again).
    DownloadFailurePolicy(on_error, max_skipped=max_skipped)
    dv_options: dict[str, Any] = {"on_error": on_error, "max_skipped": max_skipped}
    if max_concurrent_content is not None:
        dv_options["max_concurrent_content"] = max_concurrent_content
    sync = _FileSync(remote, repository, mirror=mirror, force=force)
    counts = _DownloadCounts()
    with reporting_to(*reporters, counts):
        try:
            store = workspace.store
        except StoreError:
            async with workspace:
                return await sync.run(workspace, workspace.store, dv_options, counts)
        return await sync.run(workspace, store, dv_options, counts)


class _FileSync:
    """One run of :func:`sync_files`."""

    def __init__(self, remote: Remote, repository: str, *, mirror: bool, force: bool) -> None:
        self.remote = remote
        self.repository = Repository(name=repository)
        self.mirror = mirror
        self.force = force

    async def run(
        self,
        workspace: Workspace,
        store: Store,
        dv_options: dict[str, Any],
        counts: _DownloadCounts,
    ) -> FileSyncResult:
        started = time.monotonic()
        remote, mirror = self.remote, self.mirror
        repository = await store.create_repository(self.repository, exist_ok=True)
        async with workspace.storage.temporary_area():
            manifest = await self._download_manifest(workspace)
            sha256 = manifest.sha256
            assert sha256 is not None
            assert manifest.file is not None
            options = _options(remote, mirror)
            before = await store.latest_version(repository)
            record = await read_record(store, repository)
            reasons = _reasons(record, sha256, options, before.number, force=self.force)
            shown = redact_url(remote.url)
            if not reasons:
                logger.info(
                    "%s: the manifest %s and the options are those of the last sync "
                    "(version %d); nothing to do",
                    repository.name,
                    shown,
                    before.number,
                )
                return FileSyncResult(
                    repository=repository.name,
                    url=shown,
                    manifest_sha256=sha256,
                    unchanged=True,
                    reasons=(),
                    version=None,
                    latest_version=before,
                    seconds=time.monotonic() - started,
                )
            logger.info("%s: syncing %s: %s", repository.name, shown, "; ".join(reasons))
            first_stage = FileFirstStage(remote, workspace.storage, manifest=Path(manifest.file))
            dv = DeclarativeVersion(
                first_stage, repository, mirror=mirror, workspace=workspace, **dv_options
            )
            version = await dv.acreate()
        after = await store.latest_version(repository)
        record = None
        if version is not None or after.number == before.number:
            record = SyncRecord(
                manifest_sha256=sha256,
                options=options,
                version_number=after.number if version is None else version.number,
                skipped_units=len(dv.skipped),
            )
        # else another sync made a version meanwhile: this one did not see all of it, so
        # the record is dropped and the next sync runs in full.
        await write_record(store, repository, record)
        return FileSyncResult(
            repository=repository.name,
            url=shown,
            manifest_sha256=sha256,
            unchanged=False,
            reasons=tuple(reasons),
            version=version,
            latest_version=after,
            units=first_stage.units,
            declared_bytes=first_stage.declared_bytes,
            manifests=len(first_stage.manifests),
            downloaded_files=counts.done.get(DOWNLOADING_ARTIFACTS_CODE, 0),
            downloaded_bytes=counts.done.get(DOWNLOADING_BYTES_CODE, 0),
            skipped_units=tuple(dv.skipped),
            seconds=time.monotonic() - started,
        )

    async def _download_manifest(self, workspace: Workspace) -> Artifact:
        d_artifact = DeclarativeArtifact(
            artifact=Artifact(),
            url=self.remote.url,
            relative_path=MANIFEST_NAME,
            remote=self.remote,
        )
        async with (
            ProgressReport(
                message=DOWNLOADING_METADATA_MESSAGE, code=DOWNLOADING_METADATA_CODE, total=1
            ) as report,
            workspace.downloader_factory() as factory,
        ):
            await d_artifact.download(factory)
            report.increment()
        return d_artifact.artifact
