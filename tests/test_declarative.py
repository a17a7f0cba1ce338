"""DeclarativeContent and DeclarativeArtifact: validation, resolution, does_batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

from stageline import (
    DeclarativeArtifact,
    DeclarativeContent,
    InvalidValueError,
    Resolvable,
    Stage,
    StagelineError,
    UnsafePathError,
)
from stageline.models import Artifact, Remote
from stageline.testing import run_stage

from .stages import HANG_TIMEOUT, Node


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


def test_a_new_item_starts_with_every_field_of_a_new_resolvable() -> None:
    """DeclarativeContent's hand-written initializer sets Resolvable's fields as
    Resolvable's own initializer does (it does not call it, to save a call per item)."""
    d = DeclarativeContent(Node(name="a"))
    fresh = Resolvable()
    for field in attrs.fields(Resolvable):
        assert getattr(d, field.name) == getattr(fresh, field.name), field.name


@pytest.mark.anyio
async def test_an_item_made_in_a_stage_belongs_to_its_pipeline_as_a_resolvable_does() -> None:
    """Made inside a running stage, a DeclarativeContent records that stage's pipeline,
    as a Resolvable made there does (outside any pipeline both record None, above)."""

    class Making(Stage):
        async def run(self) -> None:
            await self.put(DeclarativeContent(Node(name="made")))
            await self.put(Resolvable())

    made, plain = await run_stage(Making(), [])
    assert made.pipeline is not None
    assert made.pipeline is plain.pipeline


@pytest.mark.anyio
async def test_resolve_wakes_every_waiter_with_the_content() -> None:
    """Every task awaiting resolution() gets the content once resolve() is called."""
    with anyio.fail_after(HANG_TIMEOUT):
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
    with anyio.fail_after(HANG_TIMEOUT):
        assert await d.resolution() is d.content


@pytest.mark.anyio
async def test_resolution_returns_the_content_as_it_is_when_resolved() -> None:
    """A stage that swaps in saved content before resolving hands that content to waiters."""
    with anyio.fail_after(HANG_TIMEOUT):
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
    with anyio.fail_after(HANG_TIMEOUT):
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
    with anyio.fail_after(HANG_TIMEOUT):
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


def test_declarative_artifact_evolves_and_keeps_url_and_urls_in_step() -> None:
    """attrs.evolve makes a checked copy; setting url or urls later updates the other."""
    remote = Remote(url="http://x")
    da = DeclarativeArtifact(
        artifact=_artifact(), urls=["http://x/a", "http://y/a"], relative_path="a", remote=remote
    )
    assert (da.url, da.urls, da.extra_data, da.deferred_download) == (
        "http://x/a",
        ("http://x/a", "http://y/a"),
        {},
        None,
    )
    copy = attrs.evolve(da, relative_path="b/a", deferred_download=False)
    assert (copy.url, copy.urls, copy.relative_path) == (da.url, da.urls, "b/a")
    assert copy.remote is remote
    assert copy.deferred_download is False
    with pytest.raises(ValueError, match="unsafe relative path"):
        attrs.evolve(da, relative_path="../a")
    copy.url = "http://z/a"
    assert copy.urls == ("http://z/a",)
    copy.urls = ("http://w/a", "http://v/a")  # type: ignore[assignment]
    assert copy.url == "http://w/a"
    with pytest.raises(ValueError, match="relative_path is required"):
        copy.relative_path = None  # type: ignore[assignment]


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


def _declare(**kwargs: Any) -> DeclarativeArtifact:
    """A DeclarativeArtifact with a remote and relative path "a", plus ``kwargs``."""
    kwargs.setdefault("relative_path", "a")
    return DeclarativeArtifact(artifact=_artifact(), remote=Remote(url="http://m1"), **kwargs)


@pytest.mark.parametrize("urls", ["http://m1/a", b"http://m1/a"])
def test_urls_given_as_one_string_is_refused(urls: Any) -> None:
    """urls="http://…" is an error that says to pass a list, not one mirror per character."""
    with pytest.raises(InvalidValueError, match="urls must be a list of urls, got the string"):
        _declare(urls=urls)


@pytest.mark.parametrize("urls", [[], ()])
def test_empty_urls_is_refused(urls: Any) -> None:
    """urls=[] names no mirror: refused, with or without url."""
    with pytest.raises(InvalidValueError, match="urls is empty"):
        _declare(urls=urls)
    with pytest.raises(InvalidValueError, match="urls is empty"):
        _declare(url="http://m1/a", urls=urls)


@pytest.mark.parametrize("bad", ["", None, 3, b"http://m2/a"])
def test_every_mirror_must_be_a_non_empty_str(bad: Any) -> None:
    """A mirror that is not a non-empty str is refused, naming it."""
    with pytest.raises(InvalidValueError, match="every url in urls must be a non-empty str"):
        _declare(urls=["http://m1/a", bad])


@pytest.mark.parametrize("url", ["", 3, ["http://m1/a"]])
def test_url_must_be_a_non_empty_str(url: Any) -> None:
    """url is one url string."""
    with pytest.raises(InvalidValueError, match="url must be a non-empty str"):
        _declare(url=url)


def test_url_reads_as_the_first_mirror() -> None:
    """With mirrors, url is the first of them, as plugins written for the documented API expect."""
    da = _declare(urls=["http://m1/a", "http://m2/a"])
    assert da.url == "http://m1/a"
    assert da.urls == da.all_urls == ("http://m1/a", "http://m2/a")


def test_a_single_url_is_the_only_mirror() -> None:
    """With url, urls and all_urls hold just that url."""
    da = _declare(url="http://m1/a")
    assert da.url == "http://m1/a"
    assert da.urls == da.all_urls == ("http://m1/a",)


def test_setting_url_or_urls_keeps_the_other_in_step() -> None:
    """A stage that rewrites url or urls later sees both agree (and bad values refused)."""
    da = _declare(urls=["http://m1/a", "http://m2/a"])
    da.url = "http://m3/a"
    assert da.all_urls == ("http://m3/a",)
    da.urls = ["http://m4/a", "http://m5/a"]  # type: ignore[assignment]
    assert da.url == "http://m4/a"
    assert da.all_urls == ("http://m4/a", "http://m5/a")
    with pytest.raises(InvalidValueError, match="got the string"):
        da.urls = "http://m6/a"  # type: ignore[assignment]
    with pytest.raises(InvalidValueError, match="url must be a non-empty str"):
        da.url = ""
    assert da.all_urls == ("http://m4/a", "http://m5/a")


def test_evolve_keeps_the_mirrors() -> None:
    """attrs.evolve passes url and urls back in; that is not "both"."""
    da = _declare(urls=["http://m1/a", "http://m2/a"])
    again = attrs.evolve(da, relative_path="b")
    assert again.all_urls == da.all_urls
    assert again.relative_path == "b"


@pytest.mark.parametrize(
    "path", ["/etc/passwd", "../up", "a/../../b", "a//b", "a\\b", "a\x00b", "./a", "a/"]
)
def test_declarative_artifact_refuses_an_unsafe_relative_path(path: str) -> None:
    """An upstream path that could leave the repository is refused where it is declared."""
    with pytest.raises(UnsafePathError, match=r"DeclarativeArtifact\.relative_path") as info:
        _declare(url="http://m1/a", relative_path=path)
    assert repr(path) in str(info.value)
    # Set later, it is refused the same way, and the safe path stays.
    da = _declare(url="http://m1/a", relative_path="a")
    with pytest.raises(UnsafePathError, match=r"DeclarativeArtifact\.relative_path") as info:
        da.relative_path = path
    assert repr(path) in str(info.value)
    assert da.relative_path == "a"


def test_declarative_errors_are_stageline_errors() -> None:
    """Argument errors of declarative objects are both ValueError and StagelineError."""
    with pytest.raises(StagelineError):
        DeclarativeContent(None)  # type: ignore[arg-type]
    with pytest.raises(StagelineError):
        _declare()
    with pytest.raises(ValueError, match="a remote is required"):
        DeclarativeArtifact(artifact=_artifact(), url="http://x/a", relative_path="a")


@pytest.mark.anyio
async def test_a_plugin_attrs_subclass_of_declarative_content_works() -> None:
    """An attrs subclass with a field of its own takes the usual arguments and defaults,
    still refuses a missing content, and resolves like DeclarativeContent."""

    @attrs.define(eq=False)
    class Package(DeclarativeContent):
        arch: str = "noarch"

    package = Package(Node(name="p"))
    assert (package.d_artifacts, package.extra_data, package.arch) == ([], {}, "noarch")
    with pytest.raises(InvalidValueError, match="Package: content is required"):
        Package(None)  # type: ignore[arg-type]
    package.resolve()
    with anyio.fail_after(HANG_TIMEOUT):
        assert await package.resolution() is package.content


def test_evolve_copies_a_declarative_content() -> None:
    """attrs.evolve makes a new, unresolved item with the same content and extra data."""
    d = DeclarativeContent(Node(name="n"), extra_data={"k": 1})
    d.resolve()
    copy = attrs.evolve(d)
    assert copy is not d
    assert copy.content is d.content
    assert copy.extra_data == {"k": 1}
    assert not copy.resolved
