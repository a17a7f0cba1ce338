"""The remote's download settings as command-line options, shared by commands that sync."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeVar

import attrs
import click

from ..models import Remote

__all__ = ["PASSWORD_ENV", "PROXY_PASSWORD_ENV", "download_options", "remote_settings"]

F = TypeVar("F", bound=Callable[..., Any])

#: Environment variables the passwords may come from (kept out of shell histories).
PASSWORD_ENV: Final = "STAGELINE_PASSWORD"
PROXY_PASSWORD_ENV: Final = "STAGELINE_PROXY_PASSWORD"

_POSITIVE: Final = click.FloatRange(min=0, min_open=True)


def _default(field: str) -> str:
    """The Remote default of ``field``, for the help."""
    return f"(default: {attrs.fields_dict(Remote)[field].default})"


def _header(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    headers = {}
    for value in values:
        name, colon, text = value.partition(":")
        if not colon or not name.strip():
            raise click.BadParameter(f"{value!r} is not NAME:VALUE (e.g. 'X-Token: abc')")
        headers[name.strip()] = text.strip()
    return headers


_OPTIONS: Final = [
    click.option(
        "--download-concurrency",
        type=click.IntRange(min=1),
        default=None,
        help=f"At most this many requests at once {_default('download_concurrency')}.",
    ),
    click.option(
        "--max-retries",
        type=click.IntRange(min=0),
        default=None,
        help=f"Retries of a failed request {_default('max_retries')}.",
    ),
    click.option(
        "--rate-limit", type=_POSITIVE, default=None, help="At most this many requests per second."
    ),
    click.option(
        "--connect-timeout",
        type=_POSITIVE,
        default=None,
        help=f"Seconds to connect {_default('connect_timeout')}.",
    ),
    click.option(
        "--read-timeout",
        type=_POSITIVE,
        default=None,
        help=f"Seconds to wait for the next bytes {_default('sock_read_timeout')}.",
    ),
    click.option(
        "--total-timeout", type=_POSITIVE, default=None, help="Seconds for a whole download."
    ),
    click.option(
        "--header",
        "headers",
        multiple=True,
        metavar="NAME:VALUE",
        callback=_header,
        help="An extra request header (repeatable).",
    ),
    click.option("--username", default=None, help="HTTP basic auth user."),
    click.option(
        "--password",
        default=None,
        envvar=PASSWORD_ENV,
        show_envvar=True,
        help="HTTP basic auth password.",
    ),
    click.option("--proxy", "proxy_url", metavar="URL", default=None, help="An HTTP(S) proxy."),
    click.option("--proxy-username", default=None, help="The proxy's user."),
    click.option(
        "--proxy-password",
        default=None,
        envvar=PROXY_PASSWORD_ENV,
        show_envvar=True,
        help="The proxy's password.",
    ),
    click.option(
        "--ca-cert",
        type=click.Path(exists=True, dir_okay=False),
        default=None,
        help="A PEM bundle of CAs to trust instead of the system's.",
    ),
    click.option(
        "--client-cert",
        type=click.Path(exists=True, dir_okay=False),
        default=None,
        help="A PEM client certificate.",
    ),
    click.option(
        "--client-key",
        type=click.Path(exists=True, dir_okay=False),
        default=None,
        help="The client certificate's PEM key.",
    ),
    click.option(
        "--no-verify-tls",
        is_flag=True,
        default=False,
        help="Do not verify TLS certificates (not recommended).",
    ),
]

# Option name -> Remote field, where they differ.
_FIELDS: Final = {"read_timeout": "sock_read_timeout"}
_NAMES: Final = (
    "download_concurrency",
    "max_retries",
    "rate_limit",
    "connect_timeout",
    "read_timeout",
    "total_timeout",
    "headers",
    "username",
    "password",
    "proxy_url",
    "proxy_username",
    "proxy_password",
    "ca_cert",
    "client_cert",
    "client_key",
)


def download_options(command: F) -> F:
    """Add the remote's download settings to ``command``; :func:`remote_settings` reads them."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def remote_settings(options: dict[str, Any]) -> dict[str, Any]:
    """The ``Remote`` fields the options set; pops them from ``options``."""
    settings: dict[str, Any] = {}
    for name in _NAMES:
        value = options.pop(name)
        if value is not None and value != {}:
            settings[_FIELDS.get(name, name)] = value
    if options.pop("no_verify_tls"):
        settings["tls_validation"] = False
    return settings
