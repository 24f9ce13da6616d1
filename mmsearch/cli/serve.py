"""`mmsearch serve`: the JSON API and the web page, with the models loaded once."""

from __future__ import annotations

import click


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--root-path",
    default="",
    metavar="PREFIX",
    help="The path prefix a reverse proxy serves this under, e.g. /search.",
)
@click.option(
    "--proxy-header",
    metavar="NAME",
    help="Trusted-proxy mode: take the caller's principals from this header"
    " (only from --trusted-proxy addresses).",
)
@click.option(
    "--trusted-proxy",
    "trusted_proxies",
    multiple=True,
    default=("127.0.0.1/32", "::1/128"),
    show_default=True,
    metavar="ADDRESS",
    help="Repeatable: a proxy address or network whose --proxy-header is believed.",
)
@click.option("--max-upload-mb", default=64, show_default=True, type=click.IntRange(1, 4096))
@click.option(
    "--pool-size", default=16, show_default=True, type=click.IntRange(2, 200), help="Connections."
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
def serve_command(
    host: str,
    port: int,
    root_path: str,
    proxy_header: str | None,
    trusted_proxies: tuple[str, ...],
    max_upload_mb: int,
    pool_size: int,
    log_level: str,
) -> None:
    """Serve the JSON API (/api, docs at /docs) and the web page (/) until interrupted."""
    from mmsearch.api.auth import ProxyTrust
    from mmsearch.api.server import ServeOptions, serve

    if root_path and not root_path.startswith("/"):
        raise click.BadParameter("must start with /", param_hint="--root-path")
    try:
        proxy = ProxyTrust.parse(proxy_header, trusted_proxies) if proxy_header else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--trusted-proxy") from None
    serve(
        ServeOptions(
            host=host,
            port=port,
            root_path=root_path.rstrip("/"),
            proxy=proxy,
            max_upload_bytes=max_upload_mb << 20,
            pool_size=pool_size,
            log_level=log_level,
        )
    )
