"""The content app: repository versions served over HTTP, on asyncio or Trio.

:class:`ContentApp` is an ASGI application built on a
:class:`~stageline.sync.ContentFetcher`: HTML indexes of the repositories, their versions
and folders, and each file with its ``Content-Length``, an ``ETag`` from its sha256 and
byte ranges; deferred files are fetched from their remotes when first asked for.
:func:`serve` runs it with Hypercorn on the running event loop; :func:`serve_workspace`
opens a workspace's fetcher and serves it (what ``stageline serve`` runs). See
``docs/content-app.md``.
"""

from ._app import ContentApp
from ._server import DEFAULT_HOST, serve, serve_workspace

__all__ = ["DEFAULT_HOST", "ContentApp", "serve", "serve_workspace"]
