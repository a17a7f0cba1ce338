"""The attrs models: content type declarations, keys, and the unsaved-until-pk rule."""

from __future__ import annotations

from typing import ClassVar

import attrs
import pytest

from stageline import ContentTypeError, StagelineError, StoreError
from stageline.models import Artifact, Content, Remote, Repository, content_types


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
    assert deb.natural_key() == ("a", "1", "all")
    assert deb.repo_key() == ("a", "all")
    assert deb.data() == {"name": "a", "version": "1", "arch": "all"}


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
    with pytest.raises(ContentTypeError, match="declared twice"):

        @attrs.define(eq=False, kw_only=True)
        class Other(Content):
            type_name: ClassVar[str] = "models-test.deb"
            natural_key_fields: ClassVar[tuple[str, ...]] = ("name",)
            name: str


def test_objects_are_unsaved_until_they_have_a_pk() -> None:
    """saved is False until a primary key is set."""
    for obj in (
        Deb(name="a", version="1"),
        Artifact(sha256="ab"),
        Remote(url="http://x/"),
        Repository(name="r"),
    ):
        assert not obj.saved
        obj.pk = 1
        assert obj.saved


def test_artifact_digests_are_validated() -> None:
    """A digest must be lower-case hex: the error names the field and the value."""
    with pytest.raises(ValueError, match="sha256 must be a lower-case hex digest"):
        Artifact(sha256="XYZ")
    assert Artifact(sha256="ab", md5="cd").digests() == {"md5": "cd", "sha256": "ab"}
