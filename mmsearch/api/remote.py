"""The CLI's side of the API: search through a running server instead of loading models.

`MMSEARCH_URL` (with `MMSEARCH_TOKEN`) names a server explicitly; otherwise a local server
is found through `$MMSEARCH_HOME/server.json` and called with its local key. Standard
library only (urllib), so a CLI that talks to a server imports no model code at all.
"""

from __future__ import annotations

import json
import mimetypes
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from mmsearch.api import discovery
from mmsearch.config import Settings
from mmsearch.errors import UserError

#: fields of a hit the CLI prints (the server adds URLs that a local search has no use for)
SERVER_ONLY_FIELDS = ("media_url", "thumbnail_url")


class ServerUnreachable(Exception):
    """Nothing answers at the server's address (a stale server.json, a stopped server)."""


@dataclass(frozen=True)
class RemoteSearch:
    url: str
    key: str
    #: named by MMSEARCH_URL: failing to reach it is an error, not a reason to go local
    explicit: bool = False
    timeout_s: float = 300.0

    def search(self, subject: str | Path | int, options: dict[str, Any]) -> list[dict[str, Any]]:
        """Hits as dicts with the fields of `search --json`, best first."""
        query = _query(options)
        if isinstance(subject, Path):
            kind = mimetypes.guess_type(subject.name)[0] or "application/octet-stream"
            request = self._request("POST", query, subject.read_bytes(), kind)
        elif isinstance(subject, int):
            body = json.dumps({**query, "like": subject}).encode()
            request = self._request("POST", {}, body, "application/json")
        else:
            request = self._request("GET", {**query, "q": subject})
        hits = self._send(request)["hits"]
        return [{k: v for k, v in hit.items() if k not in SERVER_ONLY_FIELDS} for hit in hits]

    def _request(
        self, method: str, query: dict[str, Any], body: bytes | None = None, kind: str = ""
    ) -> urllib.request.Request:
        headers = {"Authorization": f"Bearer {self.key}", "Accept": "application/json"}
        if kind:
            headers["Content-Type"] = kind
        target = f"{self.url.rstrip('/')}/api/search"
        if query:
            target += "?" + urlencode(query, doseq=True)
        return urllib.request.Request(target, data=body, headers=headers, method=method)

    def _send(self, request: urllib.request.Request) -> dict[str, Any]:
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            raise _http_error(exc) from None
        except (urllib.error.URLError, ConnectionError) as exc:
            if self.explicit:
                raise UserError(f"cannot reach MMSEARCH_URL {self.url}: {exc}") from None
            raise ServerUnreachable(str(exc)) from None


def server_for_cli(settings: Settings) -> RemoteSearch | None:
    """The server this CLI should search through, or None to search in-process."""
    local = discovery.find(settings)
    url = os.environ.get("MMSEARCH_URL", "").strip()
    if not url:
        return RemoteSearch(local.url, local.key) if local else None
    token = os.environ.get("MMSEARCH_TOKEN", "").strip()
    if not token and local is not None and local.url.rstrip("/") == url.rstrip("/"):
        token = local.key
    if not token:
        raise UserError("MMSEARCH_URL is set: give an API token in MMSEARCH_TOKEN")
    return RemoteSearch(url, token, explicit=True)


def _query(options: dict[str, Any]) -> dict[str, Any]:
    """`Client.search` keyword arguments as the API's parameters."""
    return {
        "collection": options.get("collection") or [],
        "media_type": options.get("media_types") or [],
        "tag": options.get("tags") or [],
        **({"filter": options["filter"]} if options.get("filter") else {}),
        "mode": options.get("mode", "hybrid"),
        "k": options.get("k", 10),
        "segments": str(bool(options.get("segments"))).lower(),
        "weight": [f"{leg}={w}" for leg, w in (options.get("weights") or {}).items()],
        **({"fusion": options["fusion"]} if options.get("fusion") else {}),
        **({"sounds_like": options["sounds_like"]} if options.get("sounds_like") else {}),
        "space": options.get("spaces") or [],
        "principal": options.get("principals") or [],
    }


def _http_error(exc: urllib.error.HTTPError) -> Exception:
    try:
        detail = json.load(exc).get("detail")
    except ValueError:
        detail = None
    if not isinstance(detail, str):
        detail = json.dumps(detail) if detail else exc.reason
    if exc.code == 401:
        return UserError(f"the server refused the token: {detail}")
    if exc.code < 500:
        return UserError(detail)
    return RuntimeError(f"server error {exc.code}: {detail}")
