"""find_remote_artifact_urls: where a remote serves files, by sha256 (alternate content sources)."""

from __future__ import annotations

import pytest
from store_support import FileUnit, sha

from stageline.models import ContentArtifact, Remote, RemoteArtifact
from stageline.store import Store

pytestmark = pytest.mark.anyio


async def test_a_remotes_files_are_found_by_sha256_and_by_its_name(store: Store) -> None:
    """Only that remote's urls; the first saved wins; an unsaved Remote of that name works."""
    units = [FileUnit(path=f"f{n}", digest=sha(n)) for n in range(3)]
    cas = [ContentArtifact(content=u, artifact=None, relative_path=u.path) for u in units]
    await store.save_content(units, cas)
    mirror = await store.save_remote(Remote(url="http://mirror.test/", name="mirror"))
    other = await store.save_remote(Remote(url="http://other.test/", name="other"))

    def at(remote: Remote, url: str, ca: ContentArtifact, digest: str) -> RemoteArtifact:
        return RemoteArtifact(url=url, content_artifact=ca, remote=remote, sha256=digest)

    await store.save_remote_artifacts([at(mirror, "http://mirror.test/f0", cas[0], sha(0))])
    await store.save_remote_artifacts(
        [
            # A second unit with the same file, saved later: the first url wins.
            at(mirror, "http://mirror.test/again", cas[2], sha(0)),
            at(other, "http://other.test/f1", cas[1], sha(1)),
        ]
    )
    same_name = Remote(url="http://elsewhere.test/", name="mirror")
    found = await store.find_remote_artifact_urls(same_name, [sha(0), sha(1), sha(0), sha(9)])
    assert found == {sha(0): "http://mirror.test/f0"}
    assert await store.find_remote_artifact_urls(other, [sha(1)]) == {
        sha(1): "http://other.test/f1"
    }
    unknown = Remote(url="http://unknown.test/", name="unknown")
    assert await store.find_remote_artifact_urls(unknown, [sha(0)]) == {}
    assert await store.find_remote_artifact_urls(mirror, []) == {}
