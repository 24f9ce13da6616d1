"""`mmsearch serve`: bind, load the models once, publish the local key, run uvicorn.

The socket is bound first, so a busy port fails at once; `server.json` is written only
when the models are loaded and uvicorn serves, so a CLI that finds the server never waits
for a model. The file is removed on a clean stop; after a crash a CLI sees a dead pid and
ignores it.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mmsearch.api import discovery
from mmsearch.api.auth import ProxyTrust
from mmsearch.api.discovery import LocalServer
from mmsearch.config import Settings
from mmsearch.errors import UserError

if TYPE_CHECKING:
    from mmsearch.api.app import Lifespan

LOCAL_KEY_PREFIX = "mmsl_"


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8765
    root_path: str = ""
    proxy: ProxyTrust | None = None
    max_upload_bytes: int = 64 << 20
    pool_size: int = 16
    log_level: str = "info"


def serve(options: ServeOptions) -> None:
    import uvicorn

    from mmsearch.api.app import create_app
    from mmsearch.api.service import Service
    from mmsearch.api.tokens import new_secret
    from mmsearch.client import Client
    from mmsearch.db import schema
    from mmsearch.db.engine import Database, resolve_dsn

    settings = Settings.load()
    dsn = resolve_dsn(settings)
    schema.ensure(dsn)
    started = time.perf_counter()
    client = Client(Database(dsn, max_size=options.pool_size), settings)
    local_key = new_secret(LOCAL_KEY_PREFIX)
    try:
        service = Service(
            client,
            local_key=local_key,
            proxy=options.proxy,
            max_upload_bytes=options.max_upload_bytes,
        )
        listener = _listen(options.host, options.port)
        try:
            service.warm()
            url = f"http://{_reachable_host(options.host)}:{listener.getsockname()[1]}"
            server = discovery.LocalServer(
                url, os.getpid(), discovery.database_fingerprint(settings), local_key
            )
            print(
                f"mmsearch serving {url}{options.root_path} (models loaded in"
                f" {time.perf_counter() - started:.1f} s); sign in with a token from"
                " `mmsearch token add`",
                file=sys.stderr,
                flush=True,
            )
            config = uvicorn.Config(
                create_app(service, lifespan=_published(settings, server)),
                root_path=options.root_path,
                proxy_headers=False,  # request.client must be the real peer (see ProxyTrust)
                log_level=options.log_level,
                server_header=False,
            )
            uvicorn.Server(config).run(sockets=[listener])
        finally:
            listener.close()
    finally:
        client.close()


def _published(settings: Settings, server: LocalServer) -> Lifespan:
    """Write server.json while serving; uvicorn re-raises SIGTERM after the shutdown
    steps, so removing it there (not in a `finally` after `run`) is what always happens."""

    @asynccontextmanager
    async def lifespan(app: object) -> AsyncIterator[None]:
        discovery.publish(settings, server)
        try:
            yield
        finally:
            discovery.withdraw(settings, server.pid)

    return lifespan


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _reachable_host(host: str) -> str:
    """The address a local client dials: the wildcard binds are reached on loopback."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host
