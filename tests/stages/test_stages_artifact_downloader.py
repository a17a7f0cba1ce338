"""ArtifactDownloader: what it downloads (policies), once per file, with its expectations."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.sync._plugin import SyncFile, Upstream, file_unit

from stageline import DeclarativeArtifact, DeclarativeContent, SizeMismatch
from stageline.download import DownloaderFactory
from stageline.models import Artifact, DownloadPolicy, Remote
from stageline.stages import ArtifactDownloader, is_deferred
from stageline.storage import use_temp_dir
from stageline.testing import run_stage

pytestmark = pytest.mark.anyio


def declared(remote: Remote | None, **options: object) -> DeclarativeArtifact:
    return DeclarativeArtifact(
        artifact=Artifact(**options.pop("artifact", {})),  # type: ignore[arg-type]
        url="http://127.0.0.1:9/x",
        relative_path="x",
        remote=remote,
        **options,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("policy", "deferred_download", "expected"),
    [
        (DownloadPolicy.IMMEDIATE, None, False),
        (DownloadPolicy.ON_DEMAND, None, True),
        (DownloadPolicy.STREAMED, None, True),
        (DownloadPolicy.ON_DEMAND, False, False),
        (DownloadPolicy.STREAMED, False, False),
        (DownloadPolicy.IMMEDIATE, True, True),
    ],
)
def test_deferral_follows_the_remote_unless_the_artifact_says_otherwise(
    policy: DownloadPolicy, deferred_download: bool | None, expected: bool
) -> None:
    """None follows the remote's policy; an explicit True or False wins over it."""
    remote = Remote(url="http://127.0.0.1:9/", policy=policy)
    assert is_deferred(declared(remote, deferred_download=deferred_download)) is expected


async def test_only_unsaved_undeferred_artifacts_without_a_file_are_downloaded(
    upstream: Upstream, tmp_path: Path
) -> None:
    """Saved, deferred and file-carrying artifacts are left alone; the rest is downloaded."""
    names = ("plain", "saved", "deferred", "has-file", "index")
    digests = {name: upstream.add(name, f"bytes of {name}".encode()) for name in names}
    immediate = upstream.remote()
    on_demand = upstream.remote(policy=DownloadPolicy.ON_DEMAND)
    units = {
        name: file_unit(immediate, name, digests[name], len(f"bytes of {name}")) for name in names
    }
    units["saved"].d_artifacts[0].artifact.pk = 7
    units["deferred"].d_artifacts[0].remote = on_demand
    local = tmp_path / "local"
    local.write_bytes(b"bytes of has-file")
    units["has-file"].d_artifacts[0].artifact.file = local
    units["index"].d_artifacts[0].remote = on_demand
    units["index"].d_artifacts[0].deferred_download = False
    with use_temp_dir(tmp_path / "area"):
        async with DownloaderFactory() as factory:
            stage = ArtifactDownloader(factory)
            assert await run_stage(stage, list(units.values())) == list(units.values())
    assert sorted(upstream.file_requests()) == ["/repo/index", "/repo/plain"]
    assert stage.downloaded == 2
    for name in ("plain", "index"):
        artifact = units[name].d_artifacts[0].artifact
        assert artifact.sha256 == digests[name]
        assert artifact.file is not None
        assert artifact.file.read_bytes() == f"bytes of {name}".encode()
        assert artifact.sha512 is not None  # every allowed digest of the download
        assert artifact.file.parent == tmp_path / "area"
    assert units["deferred"].d_artifacts[0].artifact.file is None
    assert units["has-file"].d_artifacts[0].artifact.file == local


async def test_a_file_declared_by_several_units_is_downloaded_once(
    upstream: Upstream, tmp_path: Path
) -> None:
    """Three units, one sha256: one request, and every unit gets the same artifact."""
    sha256 = upstream.add("shared", b"shared bytes")
    remote = upstream.remote()
    units = [file_unit(remote, "shared", sha256, 12) for _ in range(3)]
    with use_temp_dir(tmp_path):
        async with DownloaderFactory() as factory:
            stage = ArtifactDownloader(factory, max_concurrent_content=1)
            await run_stage(stage, units)
    assert upstream.file_requests() == ["/repo/shared"]
    assert stage.downloaded == 1
    first = units[0].d_artifacts[0].artifact
    assert all(d.d_artifacts[0].artifact is first for d in units)


async def test_a_unit_expecting_other_than_the_shared_file_downloads_and_fails_on_its_own(
    upstream: Upstream, tmp_path: Path
) -> None:
    """Same sha256, another declared size: its own download reports the mismatch."""
    sha256 = upstream.add("shared", b"shared bytes")
    remote = upstream.remote()
    right = file_unit(remote, "shared", sha256, 12)
    wrong = file_unit(remote, "shared", sha256, 13)
    with use_temp_dir(tmp_path):
        async with DownloaderFactory() as factory:
            with pytest.raises(SizeMismatch) as info:
                await run_stage(
                    ArtifactDownloader(factory, max_concurrent_content=1), [right, wrong]
                )
    assert (info.value.expected, info.value.actual) == (13, 12)
    assert upstream.file_requests() == ["/repo/shared", "/repo/shared"]


async def test_each_missing_artifact_of_a_unit_is_downloaded(
    upstream: Upstream, tmp_path: Path
) -> None:
    """A unit with two files gets both, and the count says two."""
    remote = upstream.remote()
    first, second = upstream.add("one", b"first file"), upstream.add("two", b"second file")
    unit = DeclarativeContent(
        SyncFile(relative_path="pair", sha256=first, size=10),
        d_artifacts=[
            DeclarativeArtifact(
                artifact=Artifact(sha256=digest),
                url=upstream.url(path),
                relative_path=path,
                remote=remote,
            )
            for path, digest in (("one", first), ("two", second))
        ],
    )
    with use_temp_dir(tmp_path):
        async with DownloaderFactory() as factory:
            stage = ArtifactDownloader(factory)
            await run_stage(stage, [unit])
    assert stage.downloaded == 2
    assert [da.artifact.sha256 for da in unit.d_artifacts] == [first, second]
    assert all(da.artifact.file is not None for da in unit.d_artifacts)
