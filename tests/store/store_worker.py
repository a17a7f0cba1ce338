"""A separate process for the store's multi-process tests (run as a script, not collected).

Usage:
    store_worker.py overlap URL SEED ROUNDS REMOTE_PK
        Print "ready", wait for a line on stdin, then each round save the same artifacts,
        content, content artifacts and remote artifacts as the other worker (in a shuffled
        order), and print the primary keys it got as JSON.
    store_worker.py hang URL STORAGE_ROOT
        Start a new version of repository "victim" with changes and a temporary area with a
        file, print "ready", and wait to be killed.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import anyio
import anyio.to_thread
from store_support import FileUnit, sha

from stageline.models import Artifact, ContentArtifact, RemoteArtifact
from stageline.storage import ArtifactStorage
from stageline.store import open_store

KEYS_PER_ROUND = 200
# Each round shares KEYS_PER_ROUND - STEP keys with the next, and all with the other worker.
STEP = 150


async def overlap(url: str, seed: int, rounds: int, remote_pk: int) -> None:
    rng = random.Random(seed)
    result: dict[str, dict[str, int]] = {"artifact": {}, "content": {}, "ca": {}, "ra": {}}
    async with open_store(url) as store:
        remote = await store.get_remote(remote_pk)
        print("ready", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.readline)
        for round_number in range(rounds):
            keys = list(range(round_number * STEP, round_number * STEP + KEYS_PER_ROUND))
            rng.shuffle(keys)
            artifacts = await store.save_artifacts([Artifact(sha256=sha(k), size=k) for k in keys])
            units = [FileUnit(path=f"f{k}", digest=sha(k), size=k) for k in keys]
            cas = [
                ContentArtifact(content=u, artifact=a, relative_path=u.path)
                for u, a in zip(units, artifacts, strict=True)
            ]
            rng.shuffle(cas)
            saved = await store.save_content(units, cas)
            ras = [
                RemoteArtifact(
                    url=f"http://w{seed}.test/{ca.relative_path}",
                    content_artifact=ca,
                    remote=remote,
                )
                for ca in cas
            ]
            await store.save_remote_artifacts(ras)
            for k, artifact, unit in zip(keys, artifacts, saved, strict=True):
                result["artifact"][str(k)] = artifact.pk or 0
                result["content"][str(k)] = unit.pk or 0
            for ca, ra in zip(cas, ras, strict=True):
                result["ca"][ca.relative_path] = ca.pk or 0
                result["ra"][ca.relative_path] = ra.pk or 0
    print(json.dumps(result), flush=True)


async def hang(url: str, storage_root: Path) -> None:
    storage = ArtifactStorage(storage_root)
    async with open_store(url) as store:
        repository = await store.get_repository("victim")
        units = await store.save_content(
            [FileUnit(path=f"new{n}", digest=sha(1000 + n)) for n in range(5)]
        )
        old = await store.find_content([FileUnit(path="old0", digest=sha(0))])
        async with storage.temporary_area() as area, store.new_version(repository) as version:
            (area / "half-downloaded").write_bytes(b"x" * 1000)
            await version.add_content(units)
            await version.remove_content([u for u in old if u is not None])
            print("ready", flush=True)
            await anyio.sleep_forever()


def main() -> None:
    mode, url, *rest = sys.argv[1:]
    if mode == "overlap":
        seed, rounds, remote_pk = rest
        anyio.run(overlap, url, int(seed), int(rounds), int(remote_pk))
    elif mode == "hang":
        anyio.run(hang, url, Path(rest[0]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
