"""DeclarativeContent and DeclarativeArtifact: validation, resolution, does_batch."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from stageline import DeclarativeArtifact, DeclarativeContent
from stageline.models import Artifact, Remote

from .stages import Node


def test_content_is_required() -> None:
    """DeclarativeContent(None) is a ValueError that names the argument."""
    with pytest.raises(ValueError, match="content is required"):
        DeclarativeContent(None)  # type: ignore[arg-type]


def test_defaults_are_fresh_containers() -> None:
    """d_artifacts and extra_data default to new, unshared list and dict."""
    a, b = DeclarativeContent(Node(name="a")), DeclarativeContent(Node(name="b"))
    a.d_artifacts.append("x")  # type: ignore[arg-type]
    a.extra_data["k"] = 1
    assert b.d_artifacts == []
    assert b.extra_data == {}
    c = DeclarativeContent(Node(name="c"), d_artifacts=None, extra_data=None)
    assert c.d_artifacts == []
    assert c.extra_data == {}


@pytest.mark.anyio
async def test_resolve_wakes_every_waiter_with_the_content() -> None:
    """Every task awaiting resolution() gets the content once resolve() is called."""
    d = DeclarativeContent(Node(name="n"))
    got: list[object] = []

    async def wait() -> None:
        got.append(await d.resolution())

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(wait)
        await anyio.wait_all_tasks_blocked()
        assert got == []
        d.resolve()
    assert got == [d.content] * 3


@pytest.mark.anyio
async def test_resolving_twice_is_harmless_and_later_awaits_return_at_once() -> None:
    """A second resolve() changes nothing; resolution() after it returns immediately."""
    d = DeclarativeContent(Node(name="n"))
    d.resolve()
    d.resolve()
    assert d.resolved
    with anyio.fail_after(1):
        assert await d.resolution() is d.content


@pytest.mark.anyio
async def test_resolution_returns_the_content_as_it_is_when_resolved() -> None:
    """A stage that swaps in saved content before resolving hands that content to waiters."""
    d = DeclarativeContent(Node(name="unsaved"))
    saved = Node(name="unsaved", pk=7)
    got: list[Node] = []

    async def wait() -> None:
        got.append(await d.resolution())  # type: ignore[arg-type]

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait)
        await anyio.wait_all_tasks_blocked()
        d.content = saved
        d.resolve()
    assert got == [saved]


@pytest.mark.anyio
async def test_does_batch_is_false_only_while_awaited_and_unresolved() -> None:
    """does_batch turns False when someone awaits the item and True again once resolved."""
    d = DeclarativeContent(Node(name="n"))
    assert d.does_batch
    async with anyio.create_task_group() as tg:
        tg.start_soon(d.resolution)
        await anyio.wait_all_tasks_blocked()
        assert not d.does_batch
        d.resolve()
        assert d.does_batch
    assert d.does_batch


@pytest.mark.anyio
async def test_cancelled_waiter_no_longer_holds_back_batching() -> None:
    """A waiter that is cancelled stops counting: does_batch is True again."""
    d = DeclarativeContent(Node(name="n"))
    with anyio.move_on_after(0.01):
        await d.resolution()
    assert d.does_batch
    assert not d.resolved


def _artifact(file: Path | None = None) -> Artifact:
    return Artifact(size=3, sha256="ab" * 32, file=file)


def test_declarative_artifact_needs_a_url() -> None:
    """Neither url nor urls is a ValueError naming both."""
    with pytest.raises(ValueError, match="one of url or urls is required"):
        DeclarativeArtifact(artifact=_artifact(), relative_path="a", remote=Remote(url="http://x"))


def test_declarative_artifact_takes_url_or_urls_not_both() -> None:
    """url and urls together is a ValueError."""
    with pytest.raises(ValueError, match="not both"):
        DeclarativeArtifact(
            artifact=_artifact(),
            url="http://x/a",
            urls=["http://y/a"],
            relative_path="a",
            remote=Remote(url="http://x"),
        )


@pytest.mark.parametrize("path", [None, ""])
def test_declarative_artifact_needs_a_relative_path(path: str | None) -> None:
    """relative_path is required and non-empty."""
    with pytest.raises(ValueError, match="relative_path"):
        DeclarativeArtifact(
            artifact=_artifact(),
            url="http://x/a",
            relative_path=path,  # type: ignore[arg-type]
            remote=Remote(url="http://x"),
        )


def test_declarative_artifact_needs_an_artifact() -> None:
    """artifact is required."""
    with pytest.raises(ValueError, match="artifact is required"):
        DeclarativeArtifact(
            artifact=None,  # type: ignore[arg-type]
            url="http://x/a",
            relative_path="a",
            remote=Remote(url="http://x"),
        )


def test_declarative_artifact_needs_a_remote_unless_the_file_is_there(tmp_path: Path) -> None:
    """Without a remote, only an artifact that already has a file is accepted."""
    with pytest.raises(ValueError, match="a remote is required"):
        DeclarativeArtifact(artifact=_artifact(), url="http://x/a", relative_path="a")
    local = tmp_path / "a"
    local.write_bytes(b"abc")
    da = DeclarativeArtifact(artifact=_artifact(local), url="http://x/a", relative_path="a")
    assert da.remote is None


def test_mirrors_are_kept_in_order() -> None:
    """urls are the mirrors, in the order they will be tried."""
    da = DeclarativeArtifact(
        artifact=_artifact(),
        urls=["http://m1/a", "http://m2/a"],
        relative_path="a",
        remote=Remote(url="http://m1"),
        deferred_download=True,
    )
    assert da.all_urls == ("http://m1/a", "http://m2/a")
    assert da.deferred_download
