"""The attrs models: content type declarations, keys, and the unsaved-until-pk rule."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stageline import (
    ContentTypeError,
    InvalidValueError,
    MalformedDigestError,
    StagelineError,
    StoreError,
    UnsafePathError,
)
from stageline.models import (
    DIGEST_LENGTHS,
    Artifact,
    Content,
    ContentArtifact,
    Remote,
    RemoteArtifact,
    Repository,
    _artifact,
    check_relative_path,
    content_type_named,
    content_types,
)


@attrs.define(eq=False, kw_only=True)
class Deb(Content):
    type_name: ClassVar[str] = "models-test.deb"
    natural_key_fields: ClassVar[tuple[str, ...]] = ("name", "version", "arch")
    repo_key_fields: ClassVar[tuple[str, ...]] = ("name", "arch")

    name: str
    version: str
    arch: str = "all"


def test_declared_type_is_registered_with_its_keys() -> None:
    """A declared type is registered by name and exposes its natural and repo keys."""
    deb = Deb(name="a", version="1")
    assert content_types()["models-test.deb"] is Deb
    assert content_type_named("models-test.deb") is Deb
    assert content_type_named("models-test.never-declared") is None
    assert deb.natural_key() == ("a", "1", "all")
    assert deb.repo_key() == ("a", "all")
    assert deb.data() == {"name": "a", "version": "1", "arch": "all"}


def test_keys_are_tuples_for_one_field_none_and_fields_declared_as_a_list() -> None:
    """natural_key() and repo_key() are tuples of the values, however the fields are declared."""

    @attrs.define(eq=False, kw_only=True)
    class Listed(Content):
        type_name: ClassVar[str] = "models-test.listed"
        natural_key_fields: ClassVar[Any] = ["name"]

        name: str
        size: int = 0

    unit = Listed(name="n")
    assert unit.natural_key() == ("n",)
    assert unit.repo_key() == ()
    unit.name = "m"
    assert unit.natural_key() == ("m",)


def test_content_type_without_natural_key_is_refused() -> None:
    """Declaring a type without natural_key_fields is a ContentTypeError that says the fix."""
    with pytest.raises(ContentTypeError, match="declares no natural_key_fields") as info:

        @attrs.define(eq=False, kw_only=True)
        class Keyless(Content):
            type_name: ClassVar[str] = "models-test.keyless"
            name: str

    assert isinstance(info.value, StoreError)
    assert isinstance(info.value, StagelineError)
    assert isinstance(info.value, TypeError)


def test_key_naming_a_missing_field_is_refused() -> None:
    """natural_key_fields or repo_key_fields naming no field is a ContentTypeError."""
    with pytest.raises(ContentTypeError, match=r"repo_key_fields names \['nope'\]"):

        @attrs.define(eq=False, kw_only=True)
        class Broken(Content):
            type_name: ClassVar[str] = "models-test.broken"
            natural_key_fields: ClassVar[tuple[str, ...]] = ("name",)
            repo_key_fields: ClassVar[tuple[str, ...]] = ("nope",)
            name: str


def test_type_name_declared_twice_is_refused() -> None:
    """Two classes cannot claim the same type_name."""
    with pytest.raises(ContentTypeError, match=r"'models-test\.deb' is taken by .*\.Deb"):

        @attrs.define(eq=False, kw_only=True)
        class Other(Content):
            type_name: ClassVar[str] = "models-test.deb"
            natural_key_fields: ClassVar[tuple[str, ...]] = ("name",)
            name: str


PLUGIN_MODULE = """
from typing import ClassVar

import attrs

from stageline.models import Content


@attrs.define(eq=False, kw_only=True)
class Unit(Content):
    type_name: ClassVar[str] = {type_name!r}
    natural_key_fields: ClassVar[tuple[str, ...]] = ("name",)

    name: str
"""


@pytest.fixture
def plugin_modules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str, str], ModuleType]]:
    """Writes and imports plugin modules declaring a content type ``Unit``; forgets them after."""
    monkeypatch.syspath_prepend(str(tmp_path))
    imported: list[str] = []

    def declare(module_name: str, type_name: str) -> ModuleType:
        (tmp_path / f"{module_name}.py").write_text(PLUGIN_MODULE.format(type_name=type_name))
        imported.append(module_name)
        return importlib.import_module(module_name)

    yield declare
    for name in imported:
        sys.modules.pop(name, None)


def test_same_class_name_in_two_modules_cannot_share_a_type_name(
    plugin_modules: Callable[[str, str], ModuleType],
) -> None:
    """Two plugins' ``Unit`` classes (same qualified name, other modules) claiming one
    type_name is an error naming both; the first keeps the name."""
    first = plugin_modules("models_test_plugin_a", "models-test.shared-unit")
    with pytest.raises(ContentTypeError) as info:
        plugin_modules("models_test_plugin_b", "models-test.shared-unit")
    message = str(info.value)
    assert "models_test_plugin_a.Unit" in message
    assert "models_test_plugin_b.Unit" in message
    assert content_types()["models-test.shared-unit"] is first.Unit


def test_a_reloaded_module_declares_its_type_again(
    plugin_modules: Callable[[str, str], ModuleType],
) -> None:
    """Re-running the same class statement (a module reload) replaces the class."""
    module = plugin_modules("models_test_plugin_reloaded", "models-test.reloaded")
    old = module.Unit
    module = importlib.reload(module)
    assert module.Unit is not old
    assert content_types()["models-test.reloaded"] is module.Unit


def test_a_type_declared_in_a_function_can_be_declared_on_every_call() -> None:
    """A class statement inside a function (as tests write them) may run more than once."""

    def declare() -> type[Content]:
        @attrs.define(eq=False, kw_only=True)
        class Local(Content):
            type_name: ClassVar[str] = "models-test.local"
            natural_key_fields: ClassVar[tuple[str, ...]] = ("name",)
            name: str

        return Local

    first, second = declare(), declare()
    assert first is not second
    assert content_types()["models-test.local"] is second


def test_objects_are_unsaved_until_they_have_a_pk() -> None:
    """saved is False until a primary key is set."""
    for obj in (
        Deb(name="a", version="1"),
        Artifact(sha256="ab" * 32),
        Remote(url="http://x/"),
        Repository(name="r"),
    ):
        assert not obj.saved
        obj.pk = 1
        assert obj.saved


def test_artifact_digests_are_validated() -> None:
    """A digest must be lower-case hex: the error names the field and the value."""
    with pytest.raises(ValueError, match=r"Artifact\.sha256 must be 64 lowercase hex digits"):
        Artifact(sha256="XYZ")
    md5, sha256 = "cd" * 16, "ab" * 32
    assert Artifact(sha256=sha256, md5=md5).digests() == {"md5": md5, "sha256": sha256}


def test_an_artifact_file_becomes_a_path_and_a_path_is_kept(tmp_path: Path) -> None:
    """``file`` takes a str or any path-like and holds a Path; a Path is kept as given."""
    given = tmp_path / "f"
    assert Artifact(file=given).file is given
    assert Artifact(file=str(given)).file == given
    assert isinstance(Artifact(file=str(given)).file, Path)
    artifact = Artifact()
    assert artifact.file is None
    artifact.file = os.fsencode(given).decode()  # set later, as the store does
    assert artifact.file == given
    artifact.file = None
    assert artifact.file is None


def hex_of(length: int, digit: str = "a") -> str:
    """A well-formed lowercase hex digest of ``length`` digits."""
    return digit * length


@pytest.mark.parametrize(("kind", "length"), sorted(DIGEST_LENGTHS.items()))
@pytest.mark.parametrize("model", ["Artifact", "RemoteArtifact"])
def test_a_digest_of_the_right_length_is_accepted(kind: str, length: int, model: str) -> None:
    """Each kind takes lowercase hex of exactly its length, on artifacts and remote artifacts."""
    digest = hex_of(length, "0")
    assert make_sized(model, **{kind: digest}).digests() == {kind: digest}
    assert make_sized(model, **{kind: "f" * length}).digests() == {kind: "f" * length}


@pytest.mark.parametrize(("kind", "length"), sorted(DIGEST_LENGTHS.items()))
@pytest.mark.parametrize("model", ["Artifact", "RemoteArtifact"])
@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda d: d[:-1], id="one-digit-short"),
        pytest.param(lambda d: d + "a", id="one-digit-long"),
        pytest.param(lambda d: d[: len(d) // 2], id="half"),
        pytest.param(lambda d: d * 2, id="double"),
        pytest.param(lambda d: d.upper(), id="uppercase"),
        pytest.param(lambda d: "g" + d[1:], id="not-hex"),
        pytest.param(lambda d: " " + d[1:], id="space"),
        pytest.param(lambda d: "\uff10" * len(d), id="fullwidth-digits"),
        pytest.param(lambda d: "é" + d[1:], id="non-ascii"),
        pytest.param(lambda d: "\ud800" + d[1:], id="lone-surrogate"),
        pytest.param(lambda d: "", id="empty"),
        pytest.param(lambda d: d.encode(), id="bytes"),
        pytest.param(lambda d: int(d, 16), id="int"),
    ],
)
def test_a_malformed_digest_is_refused_where_the_artifact_is_made(
    kind: str, length: int, model: str, mangle: Any
) -> None:
    """Wrong length, case, digits or type: a MalformedDigestError (a ValueError) names the
    field, the length expected and the value."""
    bad = mangle(hex_of(length, "b"))
    with pytest.raises(MalformedDigestError, match=rf"{model}\.{kind} must be {length} lowercase"):
        make_sized(model, **{kind: bad})


def test_a_malformed_digest_error_is_an_argument_error() -> None:
    """Caught as ValueError, as InvalidValueError and as StagelineError."""
    assert issubclass(MalformedDigestError, InvalidValueError)
    assert issubclass(InvalidValueError, ValueError)
    assert issubclass(InvalidValueError, StagelineError)
    with pytest.raises(MalformedDigestError):
        Artifact(sha512="ab" * 32)  # a sha256 given as the sha512


def test_a_digest_set_later_is_checked_too() -> None:
    """Assigning a malformed digest to a made artifact is refused as well."""
    artifact = Artifact()
    with pytest.raises(MalformedDigestError):
        artifact.sha256 = "ab"
    assert artifact.sha256 is None


@pytest.mark.parametrize("size", [-1, 1.5, "3", True])
def test_a_bad_size_is_an_invalid_value_error(size: Any) -> None:
    """size must be a non-negative int; the error is a StagelineError and a ValueError."""
    with pytest.raises(InvalidValueError, match=r"Artifact\.size must be a non-negative int"):
        Artifact(size=size)


def make_sized(model: str, **digests: Any) -> Artifact | RemoteArtifact:
    """An Artifact, or a RemoteArtifact with the same digests."""
    if model == "Artifact":
        return Artifact(**digests)
    content_artifact = ContentArtifact(
        content=Deb(name="a", version="1"), artifact=None, relative_path="a"
    )
    return RemoteArtifact(
        url="http://example.test/a",
        content_artifact=content_artifact,
        remote=Remote(url="http://example.test/"),
        **digests,
    )


SAFE_PATHS = [
    "a",
    "a/b.txt",
    "pool/main/f/foo_1.0_all.deb",
    "..a",
    "a..",
    "a/..b/c",
    ".hidden",
    "a/.b",
    "with space/and-dash",
    "ünïcode/ñame.rpm",
    "epoch:1.2/x",
    "a" * 300,
]

UNSAFE_PATHS = [
    pytest.param("", "it is empty", id="empty"),
    pytest.param("/etc/passwd", "absolute", id="absolute"),
    pytest.param("/", "absolute", id="root"),
    pytest.param("..", r"'\.\.' segment", id="dotdot"),
    pytest.param("../etc/passwd", r"'\.\.' segment", id="leading-dotdot"),
    pytest.param("a/../../etc", r"'\.\.' segment", id="inner-dotdot"),
    pytest.param("a/..", r"'\.\.' segment", id="trailing-dotdot"),
    pytest.param(".", r"'\.' segment", id="dot"),
    pytest.param("./a", r"'\.' segment", id="leading-dot"),
    pytest.param("a/./b", r"'\.' segment", id="inner-dot"),
    pytest.param("a//b", "empty segment", id="double-slash"),
    pytest.param("a/", "empty segment", id="trailing-slash"),
    pytest.param("a\\b", "backslash", id="backslash"),
    pytest.param("..\\windows", "backslash", id="backslash-dotdot"),
    pytest.param("a\x00b", "control character", id="nul"),
    pytest.param("a\nb", "control character", id="newline"),
    pytest.param("a\rb", "control character", id="carriage-return"),
    pytest.param("a\tb", "control character", id="tab"),
    pytest.param("a\x1bb", "control character", id="escape"),
    pytest.param("a\x7fb", "control character", id="del"),
    pytest.param("a\x85b", "control character", id="c1-next-line"),
    pytest.param("a\ud800b", "lone surrogate", id="high-surrogate"),
    pytest.param("a/\udfff", "lone surrogate", id="low-surrogate"),
]


@pytest.mark.parametrize("path", SAFE_PATHS)
def test_check_relative_path_accepts_a_safe_path(path: str) -> None:
    """A /-separated path of ordinary segments is returned as is."""
    assert check_relative_path(path) is path


@pytest.mark.parametrize(("path", "reason"), UNSAFE_PATHS)
def test_check_relative_path_refuses_an_unsafe_path(path: str, reason: str) -> None:
    """Absolute, climbing, empty-segment, backslash and control-character paths are refused
    with an UnsafePathError (a ValueError) naming the path and the rule."""
    with pytest.raises(UnsafePathError, match=reason) as info:
        check_relative_path(path)
    assert repr(path) in str(info.value)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, StagelineError)


@pytest.mark.parametrize("path", [None, 3, b"a/b", Path("a")])
def test_check_relative_path_refuses_a_non_str(path: Any) -> None:
    """Only a str is a relative path."""
    with pytest.raises(UnsafePathError, match="must be a str"):
        check_relative_path(path)


@pytest.mark.parametrize(("path", "reason"), UNSAFE_PATHS)
def test_a_content_artifact_refuses_an_unsafe_relative_path(path: str, reason: str) -> None:
    """ContentArtifact checks its relative_path where it is made, naming the field."""
    with pytest.raises(UnsafePathError, match=rf"ContentArtifact\.relative_path: .*{reason}"):
        ContentArtifact(content=Deb(name="a", version="1"), artifact=None, relative_path=path)


def test_a_content_artifact_keeps_a_safe_relative_path() -> None:
    """A safe path is kept unchanged."""
    unit = ContentArtifact(content=Deb(name="a", version="1"), artifact=None, relative_path="a/b")
    assert unit.relative_path == "a/b"


# --- Artifact's hand-written __init__ against the one attrs generates -------------------


@attrs.define(eq=False, kw_only=True)
class _GeneratedArtifact(_artifact._SizeAndDigests):
    """Artifact's fields, with the __init__ attrs generates (the reference)."""

    file: Path | None = attrs.field(default=None, converter=_artifact._to_path)
    pk: int | None = None


def _digest_values(length: int) -> st.SearchStrategy[Any]:
    hex_text = st.text(alphabet="0123456789abcdef", min_size=length, max_size=length)
    return st.none() | hex_text | st.text(max_size=length + 1) | st.integers() | st.binary()


_artifact_kwargs = st.fixed_dictionaries(
    {},
    optional={
        "size": st.none() | st.integers(-3, 2**70) | st.booleans() | st.floats() | st.text(),
        **{kind: _digest_values(length) for kind, length in DIGEST_LENGTHS.items()},
        "file": st.none() | st.just("some/file") | st.just(Path("/tmp/x")) | st.integers(),
        "pk": st.none() | st.integers(1, 10),
    },
)


def _made(cls: type, kwargs: dict[str, Any]) -> tuple[str, Any]:
    try:
        made = cls(**kwargs)
    except Exception as exc:  # the same exception, with the class name the only difference
        return "raised", (type(exc), str(exc).replace(cls.__name__, "<cls>"))
    return "made", {name: getattr(made, name) for name in attrs.fields_dict(cls)}


@given(kwargs=_artifact_kwargs)
def test_artifact_init_does_what_the_generated_one_does(kwargs: dict[str, Any]) -> None:
    """Every combination of valid and invalid sizes, digests, files and pks: the same
    values, or the same error (type and message, first failing field first)."""
    assert _made(Artifact, kwargs) == _made(_GeneratedArtifact, kwargs)
