"""Models made from values that were checked already: no validator or converter runs.

For the store and the default stages (and a plugin's own stage in the same position), on
their hot paths: a row read back from stageline's own database, or values copied from a
model whose validators ran when it was made. attrs' generated ``__init__`` runs every
field's validator each time (six digest checks for an artifact, a relative-path check
for a content artifact), which on a sync of many units costs more than the query that
read the row.

Untrusted input (upstream metadata, a plugin's values, anything a user passes in) must
go through the classes themselves. Each builder sets every field of its class; a test
(``tests/models/test_trusted.py``) checks that against ``attrs.fields``, so that a field
added to a model cannot be left unset here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final

from ._artifact import Artifact, ContentArtifact, RemoteArtifact

if TYPE_CHECKING:
    from ._content import Content
    from ._remote import Remote

__all__ = ["trusted_artifact", "trusted_content_artifact", "trusted_remote_artifact"]

_new: Final = object.__new__
# Slot assignment without attrs' __setattr__ hooks (the validators), as attrs' own
# generated __init__ does.
_set: Final = object.__setattr__


def trusted_artifact(
    *,
    size: int | None,
    md5: str | None,
    sha1: str | None,
    sha224: str | None,
    sha256: str | None,
    sha384: str | None,
    sha512: str | None,
    file: Path | None,
    pk: int | None,
) -> Artifact:
    """An :class:`Artifact` of checked values (``file`` already a Path or None)."""
    artifact = _new(Artifact)
    _set(artifact, "size", size)
    _set(artifact, "md5", md5)
    _set(artifact, "sha1", sha1)
    _set(artifact, "sha224", sha224)
    _set(artifact, "sha256", sha256)
    _set(artifact, "sha384", sha384)
    _set(artifact, "sha512", sha512)
    _set(artifact, "file", file)
    _set(artifact, "pk", pk)
    return artifact


def trusted_content_artifact(
    content: Content, artifact: Artifact | None, relative_path: str, pk: int | None
) -> ContentArtifact:
    """A :class:`ContentArtifact` whose relative path was checked already."""
    content_artifact = _new(ContentArtifact)
    _set(content_artifact, "content", content)
    _set(content_artifact, "artifact", artifact)
    _set(content_artifact, "relative_path", relative_path)
    _set(content_artifact, "pk", pk)
    return content_artifact


def trusted_remote_artifact(
    *,
    url: str,
    content_artifact: ContentArtifact,
    remote: Remote,
    digests_of: Artifact,
    pk: int | None = None,
) -> RemoteArtifact:
    """A :class:`RemoteArtifact` with the size and digests of the (checked) ``digests_of``."""
    remote_artifact = _new(RemoteArtifact)
    _set(remote_artifact, "size", digests_of.size)
    _set(remote_artifact, "md5", digests_of.md5)
    _set(remote_artifact, "sha1", digests_of.sha1)
    _set(remote_artifact, "sha224", digests_of.sha224)
    _set(remote_artifact, "sha256", digests_of.sha256)
    _set(remote_artifact, "sha384", digests_of.sha384)
    _set(remote_artifact, "sha512", digests_of.sha512)
    _set(remote_artifact, "url", url)
    _set(remote_artifact, "content_artifact", content_artifact)
    _set(remote_artifact, "remote", remote)
    _set(remote_artifact, "pk", pk)
    return remote_artifact
