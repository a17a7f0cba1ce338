"""A re-sync recognises saved files by the strongest digest its metadata gives."""

from __future__ import annotations

import hashlib

import pytest

from stageline import DeclarativeArtifact, DeclarativeContent, Stage, Workspace
from stageline.models import Artifact, Remote

from ._plugin import SyncFile, Upstream
from ._support import paths_in, sync

pytestmark = pytest.mark.anyio


class Sha512FirstStage(Stage):
    """Declares each file with its sha512 and size only, as some upstream metadata does."""

    def __init__(self, remote: Remote, files: dict[str, bytes]) -> None:
        self.remote = remote
        self.files = files

    async def run(self) -> None:
        for path, data in self.files.items():
            sha512 = hashlib.sha512(data).hexdigest()
            await self.put(
                DeclarativeContent(
                    SyncFile(relative_path=path, sha256=sha512[:64], size=len(data)),
                    d_artifacts=[
                        DeclarativeArtifact(
                            artifact=Artifact(sha512=sha512, size=len(data)),
                            url=self.remote.url + path,
                            relative_path=path,
                            remote=self.remote,
                        )
                    ],
                )
            )


async def test_a_resync_of_sha512_only_metadata_downloads_nothing(
    any_workspace: Workspace, upstream: Upstream
) -> None:
    """Files declared by sha512 alone are downloaded once; a second repository reuses them."""
    files = {"a": b"first file", "b": b"second file"}
    for path, data in files.items():
        upstream.add(path, data)
    remote = upstream.remote()
    assert await sync(any_workspace, Sha512FirstStage(remote, files), repository="one")
    assert sorted(upstream.file_requests()) == ["/repo/a", "/repo/b"]
    assert await sync(any_workspace, Sha512FirstStage(remote, files), repository="two")
    assert sorted(upstream.file_requests()) == ["/repo/a", "/repo/b"]
    assert sorted(await paths_in(any_workspace, "two")) == ["a", "b"]
