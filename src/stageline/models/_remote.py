"""Remotes: where content comes from, and how to download it."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import attrs

from .._exceptions import SECRET_MASK, InvalidValueError, redact_url

__all__ = ["DownloadPolicy", "Remote"]


class DownloadPolicy(enum.StrEnum):
    """When a remote's files are fetched.

    - ``IMMEDIATE``: during the sync.
    - ``ON_DEMAND``: when first served; the fetched file is then saved.
    - ``STREAMED``: when served, every time; never saved.
    """

    IMMEDIATE = "immediate"
    ON_DEMAND = "on_demand"
    STREAMED = "streamed"


def _positive_int(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidValueError(f"Remote.{attribute.name} must be an int >= 1, got {value!r}")


def _non_negative_int(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidValueError(f"Remote.{attribute.name} must be an int >= 0, got {value!r}")


def _optional_positive(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InvalidValueError(
            f"Remote.{attribute.name} must be a number > 0 or None, got {value!r}"
        )


def _bool(instance: object, attribute: attrs.Attribute[bool], value: bool) -> None:
    if not isinstance(value, bool):
        raise InvalidValueError(f"Remote.{attribute.name} must be True or False, got {value!r}")


def _repr_url(url: str | None) -> str:
    return repr(url if url is None else redact_url(url))


def _repr_headers(headers: Mapping[str, str]) -> str:
    # Header values often carry a token or an API key; their names tell enough.
    return repr(dict.fromkeys(headers, SECRET_MASK))


def _non_empty_url(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value:
        raise InvalidValueError(f"Remote.url must be a non-empty str, got {value!r}")


@attrs.define(eq=False, kw_only=True)
class Remote:
    """An upstream source and the settings used to download from it.

    Every option has a default that is safe for an unattended sync: a stalled socket
    always ends in a timeout error, never a hang. Its repr shows no secret: passwords are
    left out, credentials in ``url`` and ``proxy_url`` and the values of ``headers``
    are masked (``[secure]``).

    Args:
        url: the base url of the upstream repository (``http://``, ``https://`` or ``file://``).
        name: a label for messages and progress. Downloads identify a remote by its
            ``pk`` once saved, else by this name: Remote objects with one of them in
            common share one connection pool and one set of limits in a factory.
        policy: when files are fetched (see :class:`DownloadPolicy`).
        download_concurrency: at most this many requests in flight for this remote.
        max_retries: retries after the first try on retryable errors; 0 disables retrying.
        rate_limit: at most this many requests per second (retries included); None for no limit.
        connect_timeout: seconds to establish a connection.
        sock_read_timeout: seconds to wait for the next bytes of a response.
        total_timeout: seconds for a whole download, one try; None for no overall limit
            (the read timeout still ends a stalled transfer).
        headers: extra request headers.
        username, password: HTTP basic auth credentials.
        proxy_url, proxy_username, proxy_password: an HTTP(S) proxy and its credentials.
        ca_cert: path of a PEM bundle of CAs to trust instead of the system's.
        client_cert, client_key: paths of a PEM client certificate and its key.
        tls_validation: False turns certificate verification off (not recommended).
        send_credentials_on_redirect: True sends ``headers`` and the basic auth to every
            url a redirect leads to, other origins and https→http downgrades included.
            By default they go only to the origin (scheme, host, port) of the url asked
            for; a redirect elsewhere is requested without them.
    """

    url: str = attrs.field(validator=_non_empty_url, repr=_repr_url)
    name: str = ""
    policy: DownloadPolicy = attrs.field(default=DownloadPolicy.IMMEDIATE, converter=DownloadPolicy)
    download_concurrency: int = attrs.field(default=10, validator=_positive_int)
    max_retries: int = attrs.field(default=3, validator=_non_negative_int)
    rate_limit: float | None = attrs.field(default=None, validator=_optional_positive)
    connect_timeout: float | None = attrs.field(default=30.0, validator=_optional_positive)
    sock_read_timeout: float | None = attrs.field(default=60.0, validator=_optional_positive)
    total_timeout: float | None = attrs.field(default=None, validator=_optional_positive)
    headers: Mapping[str, str] = attrs.field(factory=dict, converter=dict, repr=_repr_headers)
    username: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    proxy_url: str | None = attrs.field(default=None, repr=_repr_url)
    proxy_username: str | None = None
    proxy_password: str | None = attrs.field(default=None, repr=False)
    ca_cert: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    tls_validation: bool = True
    send_credentials_on_redirect: bool = attrs.field(default=False, validator=_bool)
    pk: int | None = None

    @property
    def saved(self) -> bool:
        """True once the store has given this remote a primary key."""
        return self.pk is not None
