"""The data model: plain attrs classes, persisted by :mod:`stageline.store`.

An object is unsaved until the store gives it a primary key (``pk``).
"""

from ._artifact import DIGEST_FIELDS, DIGEST_LENGTHS, Artifact, ContentArtifact, RemoteArtifact
from ._content import Content, content_type_named, content_types, data_fields
from ._paths import check_relative_path
from ._remote import DownloadPolicy, Remote
from ._repository import Repository, RepositoryVersion
from ._trusted import trusted_artifact, trusted_content_artifact, trusted_remote_artifact

__all__ = [
    "DIGEST_FIELDS",
    "DIGEST_LENGTHS",
    "Artifact",
    "Content",
    "ContentArtifact",
    "DownloadPolicy",
    "Remote",
    "RemoteArtifact",
    "Repository",
    "RepositoryVersion",
    "check_relative_path",
    "content_type_named",
    "content_types",
    "data_fields",
    "trusted_artifact",
    "trusted_content_artifact",
    "trusted_remote_artifact",
]
