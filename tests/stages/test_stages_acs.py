"""ACSArtifactHandler on a real SQLite file: which files the sources have, one query each."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from tests.sync._plugin import SyncFile, file_unit, sha256_of

from stageline import StageConfigurationError
from stageline.models import ContentArtifact, DownloadPolicy, Remote, RemoteArtifact
from stageline.stages import ACSArtifactHandler, AlternateContentSource
from stageline.store import Store
from stageline.testing import run_stage

pytestmark = pytest.mark.anyio

UPSTREAM = Remote(url="http://127.0.0.1:9/repo/", name="upstream")


async def known_to(store: Store, remote: Remote, files: dict[str, bytes]) -> None:
    """Record remote artifacts of ``remote`` for ``files``, as an on-demand refresh does."""
    units = [
        SyncFile(relative_path=f"{remote.name}/{p}", sha256=sha256_of(d), size=len(d))
        for p, d in files.items()
    ]
    cas = [ContentArtifact(content=u, artifact=None, relative_path=u.relative_path) for u in units]
    await store.save_content(units, cas)
    await store.save_remote(remote)
    await store.save_remote_artifacts(
        [
            RemoteArtifact(
                url=remote.url + path, content_artifact=ca, remote=remote, sha256=sha256_of(data)
            )
            for ca, (path, data) in zip(cas, files.items(), strict=True)
        ]
    )


async def test_each_file_gets_the_sources_that_have_it_in_order(store: Store) -> None:
    """a: both sources, first listed first; b: the second only; c: none; one query each."""
    first = Remote(url="http://first.test/", name="first")
    second = Remote(url="http://second.test/", name="second")
    await known_to(store, first, {"a": b"a"})
    await known_to(store, second, {"a": b"a", "b": b"b"})
    items = [file_unit(UPSTREAM, p, sha256_of(p.encode()), 1) for p in ("a", "b", "c")]
    handler = ACSArtifactHandler(
        store, [AlternateContentSource(first), AlternateContentSource(second)], batch_size=3
    )
    queries: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "remote_artifacts" in statement:
            queries.append(statement)

    sa.event.listen(store._engine, "before_cursor_execute", record)
    try:
        assert await run_stage(handler, items) == items
    finally:
        sa.event.remove(store._engine, "before_cursor_execute", record)
    found = {
        d.d_artifacts[0].relative_path: [
            (location.remote.name, location.url)
            for location in handler.alternates_for(d.d_artifacts[0])
        ]
        for d in items
    }
    assert found == {
        "a": [("first", "http://first.test/a"), ("second", "http://second.test/a")],
        "b": [("second", "http://second.test/b")],
        "c": [],
    }
    assert len(queries) == 2


async def test_files_the_sync_will_not_download_are_not_looked_up(store: Store) -> None:
    """Saved and deferred files pass without a query; nothing is found for them."""
    mirror = Remote(url="http://mirror.test/", name="mirror")
    await known_to(store, mirror, {"a": b"a", "b": b"b"})
    saved, deferred = (file_unit(UPSTREAM, p, sha256_of(p.encode()), 1) for p in ("a", "b"))
    saved.d_artifacts[0].artifact.pk = 1
    deferred.d_artifacts[0].remote = Remote(
        url=UPSTREAM.url, name="upstream", policy=DownloadPolicy.ON_DEMAND
    )
    handler = ACSArtifactHandler(store, [AlternateContentSource(mirror)])
    assert await run_stage(handler, [saved, deferred]) == [saved, deferred]
    assert handler.alternates_for(saved.d_artifacts[0]) == ()
    assert handler.alternates_for(deferred.d_artifacts[0]) == ()


async def test_sources_must_be_alternate_content_sources(store: Store) -> None:
    """A bare Remote among the sources is refused, naming what is expected."""
    with pytest.raises(StageConfigurationError, match="AlternateContentSource"):
        ACSArtifactHandler(store, [UPSTREAM])  # type: ignore[list-item]
