"""The builders of models from checked values: the same objects as the classes make."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest

from stageline import MalformedDigestError
from stageline.models import (
    Artifact,
    Content,
    ContentArtifact,
    Remote,
    RemoteArtifact,
    trusted_artifact,
    trusted_content_artifact,
    trusted_remote_artifact,
)


@attrs.define(eq=False, kw_only=True)
class Page(Content):
    type_name: ClassVar[str] = "trusted-test.page"
    natural_key_fields: ClassVar[tuple[str, ...]] = ("name",)

    name: str


def _fields(obj: Any) -> dict[str, Any]:
    """Every attrs field of ``obj`` (an unset slot raises AttributeError here)."""
    return {field.name: getattr(obj, field.name) for field in attrs.fields(type(obj))}


def test_trusted_artifact_sets_every_field_as_the_class_does() -> None:
    """trusted_artifact gives an Artifact equal, field by field, to the validated one."""
    values: dict[str, Any] = {
        "size": 3,
        "md5": "a" * 32,
        "sha1": None,
        "sha224": "b" * 56,
        "sha256": "c" * 64,
        "sha384": None,
        "sha512": "d" * 128,
        "file": Path("/tmp/x"),
        "pk": 7,
    }
    made = trusted_artifact(**values)
    assert type(made) is Artifact
    assert _fields(made) == _fields(Artifact(**values))


def test_trusted_content_artifact_sets_every_field_as_the_class_does() -> None:
    """trusted_content_artifact gives a ContentArtifact equal to the validated one."""
    unit, artifact = Page(name="p", pk=1), Artifact(sha256="e" * 64, pk=2)
    made = trusted_content_artifact(unit, artifact, "a/b.txt", 3)
    assert type(made) is ContentArtifact
    expected = ContentArtifact(content=unit, artifact=artifact, relative_path="a/b.txt", pk=3)
    assert _fields(made) == _fields(expected)


def test_trusted_remote_artifact_copies_every_digest_and_sets_every_field() -> None:
    """trusted_remote_artifact takes the size and all digests of the artifact given."""
    unit = Page(name="p", pk=1)
    ca = ContentArtifact(content=unit, artifact=None, relative_path="p", pk=3)
    remote = Remote(url="http://127.0.0.1/", name="r", pk=4)
    artifact = Artifact(size=5, md5="1" * 32, sha1="2" * 40, sha256="3" * 64, sha512="4" * 128)
    made = trusted_remote_artifact(
        url="http://127.0.0.1/p", content_artifact=ca, remote=remote, digests_of=artifact
    )
    assert type(made) is RemoteArtifact
    expected = RemoteArtifact(
        url="http://127.0.0.1/p",
        content_artifact=ca,
        remote=remote,
        **{name: getattr(artifact, name) for name in ("size", *Artifact.DIGEST_FIELDS)},
    )
    assert _fields(made) == _fields(expected)


def test_trusted_models_still_validate_later_assignments() -> None:
    """A model made by a builder keeps its class's checks for values assigned afterwards."""
    made = trusted_artifact(
        size=None,
        md5=None,
        sha1=None,
        sha224=None,
        sha256=None,
        sha384=None,
        sha512=None,
        file=None,
        pk=None,
    )
    with pytest.raises(MalformedDigestError):
        made.sha256 = "not hex"
