"""Properties of the whole sync pipeline against a simple in-memory model of it.

Each example runs one to three consecutive syncs of a repository (optionally after a
sync of another repository that saves some units first) through the default pipeline,
with a real SQLite file (new per example) and the real local HTTP server (one per test).
The syncs mix new units, units an earlier sync saved, deferred units (an ``on_demand``
remote, or ``deferred_download`` set per unit), units declared twice in one sync, several
units sharing one file (one sha256), and two units of one path in one sync (the repository
key: the last declared wins), in additive or mirror mode, at any batch size.

The model is a dict path -> sha256 per repository version. After every sync:

- the latest version holds exactly the model's natural keys;
- the version number advanced (by one) exactly when the model changed, with the model's
  added and removed counts, and the sync returned None otherwise;
- each distinct sha256 that a non-deferred unit needed and no earlier sync saved was
  downloaded exactly once, and nothing else was downloaded;
- every unit in the version has its remote artifact; a unit ever declared non-deferred has
  its artifact (with the right bytes in storage); a unit whose file was never downloaded
  has none.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import attrs
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from stageline import DeclarativeArtifact, DeclarativeContent, DeclarativeVersion, Stage, Workspace
from stageline.models import Artifact, DownloadPolicy, Remote, Repository, RepositoryVersion

from ..download._servers import LocalServer, body, running
from ._plugin import SyncFile, sha256_of
from ._support import content_artifacts, remote_artifacts, units_in

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

#: A few paths and bodies, so that examples reuse paths (repository keys) and files
#: (sha256s) often.
PATHS = ("a", "b", "c", "d")
BODIES = (b"first body", b"second body", b"third body")
SHAS = tuple(sha256_of(data) for data in BODIES)

#: Examples per backend; each runs up to four syncs (~0.1-0.3 s on a loaded 2-core box).
#: STAGELINE_PROPERTY_SCALE=10 runs ten times as many.
SCALE = float(os.environ.get("STAGELINE_PROPERTY_SCALE", "1"))
MAX_EXAMPLES = max(1, int(30 * SCALE))

#: Bounds one example: a deadlock fails it instead of hanging the test.
EXAMPLE_TIMEOUT = 30.0

#: Seconds of shrinking after a first failure; see ShrinkBudget.
SHRINK_SECONDS = 30.0


@attrs.frozen
class Declared:
    """One unit a first stage declares: the file ``BODIES[body]`` at ``path``."""

    path: str
    body: int
    deferred_download: bool | None

    @property
    def sha256(self) -> str:
        return SHAS[self.body]


@attrs.frozen
class PlannedSync:
    """One sync: what it declares, in order, its remote's policy and its mode."""

    declared: tuple[Declared, ...]
    policy: DownloadPolicy
    mirror: bool

    def deferred(self, unit: Declared) -> bool:
        if unit.deferred_download is not None:
            return unit.deferred_download
        return self.policy is not DownloadPolicy.IMMEDIATE


@attrs.frozen
class Scenario:
    """Syncs of one repository, maybe after one of another repository, and the settings."""

    other_first: PlannedSync | None
    syncs: tuple[PlannedSync, ...]
    batch_size: int
    maxsize: int
    max_concurrent_content: int


declared_units = st.builds(
    Declared,
    path=st.sampled_from(PATHS),
    body=st.integers(0, len(BODIES) - 1),
    deferred_download=st.sampled_from([None, None, True, False]),
)


@st.composite
def planned_syncs(draw: st.DrawFn) -> PlannedSync:
    """A sync declaring up to eight units, some of them twice."""
    declared = draw(st.lists(declared_units, max_size=8))
    if declared and draw(st.booleans()):
        # The same natural key declared again later in the same sync.
        again = draw(st.sampled_from(declared))
        declared.insert(draw(st.integers(declared.index(again) + 1, len(declared))), again)
    return PlannedSync(
        declared=tuple(declared),
        policy=draw(st.sampled_from([DownloadPolicy.IMMEDIATE, DownloadPolicy.ON_DEMAND])),
        mirror=draw(st.booleans()),
    )


scenarios = st.builds(
    Scenario,
    other_first=st.none() | planned_syncs(),
    syncs=st.lists(planned_syncs(), min_size=1, max_size=3).map(tuple),
    batch_size=st.sampled_from([1, 2, 3, 500]),
    maxsize=st.sampled_from([0, 1, 128]),
    max_concurrent_content=st.sampled_from([1, 2, 200]),
)


class ListedFirstStage(Stage):
    """Declares the planned units, in order, each its file at a url of its own."""

    def __init__(self, remote: Remote, declared: tuple[Declared, ...]) -> None:
        self.remote = remote
        self.declared = declared

    async def run(self) -> None:
        for unit in self.declared:
            data = BODIES[unit.body]
            await self.put(
                DeclarativeContent(
                    SyncFile(relative_path=unit.path, sha256=unit.sha256, size=len(data)),
                    d_artifacts=[
                        DeclarativeArtifact(
                            artifact=Artifact(size=len(data), sha256=unit.sha256),
                            url=url_of(self.remote, unit),
                            relative_path=unit.path,
                            remote=self.remote,
                            deferred_download=unit.deferred_download,
                        )
                    ],
                )
            )


def url_of(remote: Remote, unit: Declared) -> str:
    """The url of a unit's file: one per natural key, so two bodies of one path coexist."""
    return f"{remote.url}{unit.sha256[:12]}/{unit.path}"


class ShrinkBudget:
    """Bounds the time Hypothesis spends shrinking a failure of one test.

    Hypothesis has no setting for it, and each example here runs whole syncs. Once an
    example failed and ``seconds`` have passed since, examples that never failed are
    rejected before they run (at no cost), so the shrinker soon runs out of candidates;
    those that failed still run, so Hypothesis's final replay of the smallest one fails as
    it did and is reported.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.first_failure: float | None = None
        self.failed: set[str] = set()

    @contextmanager
    def example(self, key: str) -> Iterator[None]:
        """Run one example (identified by ``key``) within the budget."""
        if (
            self.first_failure is not None
            and key not in self.failed
            and time.monotonic() - self.first_failure > self.seconds
        ):
            reject()
        try:
            yield
        except Exception:
            self.failed.add(key)
            if self.first_failure is None:
                self.first_failure = time.monotonic()
            raise


@pytest.fixture(scope="module")
def shared_server() -> Iterator[LocalServer]:
    """One HTTP server for every example of the module (each example has its own prefix)."""
    with running(LocalServer()) as server:
        yield server


@pytest.fixture
def shrink_budget() -> ShrinkBudget:
    """The shrinking budget of one test (all its examples)."""
    return ShrinkBudget(SHRINK_SECONDS)


class Model:
    """What the syncs should leave: the repository's content and what is downloaded."""

    def __init__(self) -> None:
        self.content: dict[str, str] = {}
        self.number = 0
        self.saved_files: set[str] = set()
        # Natural keys some sync declared non-deferred: their files must be filled in.
        self.fetched_keys: set[tuple[str, str]] = set()

    def downloads(self, planned: PlannedSync) -> set[str]:
        """The sha256s the sync must download (once each)."""
        wanted = {unit.sha256 for unit in planned.declared if not planned.deferred(unit)}
        return wanted - self.saved_files

    def apply(self, planned: PlannedSync, *, to_repository: bool) -> tuple[int, int] | None:
        """Record the sync; return (added, removed) when it makes a version, else None."""
        self.saved_files |= self.downloads(planned)
        self.fetched_keys |= {
            (unit.path, unit.sha256) for unit in planned.declared if not planned.deferred(unit)
        }
        if not to_repository:
            return None
        before = set(self.content.items())
        content = {} if planned.mirror else dict(self.content)
        for unit in planned.declared:
            content[unit.path] = unit.sha256
        self.content = content
        after = set(content.items())
        if before == after:
            return None
        self.number += 1
        return len(after - before), len(before - after)


async def run_sync(
    workspace: Workspace,
    server: LocalServer,
    prefix: str,
    planned: PlannedSync,
    scenario: Scenario,
    repository: str,
) -> tuple[RepositoryVersion | None, list[str]]:
    """Run one planned sync; return its version and the paths it requested."""
    remote = Remote(url=server.url(prefix), name="upstream", policy=planned.policy, max_retries=0)
    requests_before = len(server.requests)
    version = await DeclarativeVersion(
        ListedFirstStage(remote, planned.declared),
        Repository(name=repository),
        planned.mirror,
        workspace=workspace,
        batch_size=scenario.batch_size,
        maxsize=scenario.maxsize,
        max_concurrent_content=scenario.max_concurrent_content,
    ).acreate()
    requested = [r.path for r in server.requests[requests_before:] if r.path.startswith(prefix)]
    return version, requested


async def check_repository(
    workspace: Workspace, model: Model, server: LocalServer, prefix: str
) -> None:
    """The latest version holds the model's units, with their remote artifacts and files."""
    units = await units_in(workspace)
    keys = sorted((unit.relative_path, unit.sha256) for unit in units)  # type: ignore[attr-defined]
    assert keys == sorted(model.content.items())
    cas = await content_artifacts(workspace)
    ras = await remote_artifacts(workspace)
    for path, sha256 in model.content.items():
        assert [ra.url for ra in ras[path]] == [f"{server.url(prefix)}{sha256[:12]}/{path}"]
        artifact = cas[path].artifact
        if (path, sha256) in model.fetched_keys:
            assert artifact is not None, f"{path} ({sha256[:8]}) was never filled in"
        if sha256 not in model.saved_files:
            assert artifact is None, f"{path} has an artifact that was never downloaded"
        if artifact is not None:
            assert artifact.sha256 == sha256
            data = await workspace.storage.read_bytes(artifact)
            assert sha256_of(data) == sha256


@given(scenario=scenarios)
@settings(
    max_examples=MAX_EXAMPLES,
    # Whole syncs, on a machine shared with other work: the per-example bound is
    # EXAMPLE_TIMEOUT (a hang), never a deadline on speed.
    deadline=None,
    # The server and the shrink budget are meant to be shared by every example of a test;
    # each example makes its own database, storage and url prefix.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    report_multiple_bugs=False,
)
async def test_any_mix_of_units_syncs_to_the_model(
    scenario: Scenario, shared_server: LocalServer, shrink_budget: ShrinkBudget
) -> None:
    """Consecutive syncs of any units end in the model's version, downloading each file once."""
    with shrink_budget.example(repr(scenario)), tempfile.TemporaryDirectory() as home:
        prefix = f"/ex-{uuid.uuid4().hex[:12]}/"
        for path in PATHS:
            for sha256, data in zip(SHAS, BODIES, strict=True):
                shared_server.route(f"{prefix}{sha256[:12]}/{path}", body(data))
        model = Model()
        workspace = Workspace(home)
        with anyio.fail_after(EXAMPLE_TIMEOUT):
            async with workspace:
                plans = [(scenario.other_first, "other")] if scenario.other_first else []
                plans += [(planned, "files") for planned in scenario.syncs]
                for planned, repository in plans:
                    downloads = model.downloads(planned)
                    number_before = model.number
                    version, requested = await run_sync(
                        workspace, shared_server, prefix, planned, scenario, repository
                    )
                    expected = model.apply(planned, to_repository=repository == "files")
                    requested_shas = sorted(
                        sha for sha in SHAS for path in requested if f"/{sha[:12]}/" in path
                    )
                    assert requested_shas == sorted(downloads), requested
                    if repository != "files":
                        continue
                    if expected is None:
                        assert version is None
                        assert model.number == number_before
                    else:
                        assert version is not None
                        assert (version.number, version.added_count, version.removed_count) == (
                            model.number,
                            *expected,
                        )
                        assert version.content_count == len(model.content)
                    await check_repository(workspace, model, shared_server, prefix)
