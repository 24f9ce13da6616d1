"""Who is calling: a bearer token, the local owner's key, or (opt-in) a trusted proxy.

The result is a `Caller` with the principals that PostgreSQL will see; nothing here decides
what a principal may see (row-level security does). Three ways in:

- an API token (`mmsearch token add`), as `Authorization: Bearer TOKEN` or, for the web
  page's `<img>`/`<video>` requests that cannot carry a header, the HttpOnly cookie that
  `POST /api/session` sets; its principals are fixed by the token;
- the local key, a fresh random secret the server writes to `$MMSEARCH_HOME/server.json`
  (mode 0600) at start: whoever can read it can already read the owner's database
  credentials in the same directory, so it lets the local CLI pass `--principal` as it does
  without a server, and widens nobody;
- with `--proxy-header NAME`, a reverse proxy at a trusted address that authenticated the
  user puts the principals in that header (it must drop any copy a client sent).
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import HTTPException, Request

from mmsearch.api.tokens import token_principals
from mmsearch.db.engine import validate_principals
from mmsearch.errors import InvalidPrincipal

if TYPE_CHECKING:
    from mmsearch.db.engine import Database

COOKIE = "mmsearch_token"
#: a cookie-authenticated request that changes anything must carry this header; a page on
#: another site cannot add it without a CORS preflight, which this service never answers
CSRF_HEADER = "x-requested-with"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_TOKEN_CHARS = 200
UNAUTHORIZED = {"WWW-Authenticate": 'Bearer realm="mmsearch"'}


@dataclass(frozen=True)
class Caller:
    principals: tuple[str, ...]
    #: only the local key may name principals per request (as the CLI's --principal does)
    may_choose_principals: bool = False

    def principals_for(self, requested: Sequence[str]) -> list[str]:
        """The principals a request runs as: its own only for the local key."""
        if not requested:
            return list(self.principals)
        if not self.may_choose_principals:
            raise HTTPException(403, "this token cannot choose principals")
        try:
            return validate_principals(requested)
        except InvalidPrincipal as exc:
            raise HTTPException(400, str(exc)) from None


@dataclass(frozen=True)
class ProxyTrust:
    """Principals from a header, believed only from these proxy addresses."""

    header: str
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    @classmethod
    def parse(cls, header: str, addresses: Sequence[str]) -> ProxyTrust:
        return cls(header.lower(), tuple(ipaddress.ip_network(a) for a in addresses))

    def principals(self, request: Request) -> tuple[str, ...] | None:
        value = request.headers.get(self.header)
        if value is None or request.client is None or not self._trusted(request.client.host):
            return None
        try:
            return tuple(validate_principals(p for p in re.split(r"[\s,]+", value) if p))
        except InvalidPrincipal as exc:
            raise HTTPException(400, f"{self.header}: {exc}") from None

    def _trusted(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)


class Authenticator:
    """Turns a request into a `Caller`, or answers 401."""

    def __init__(
        self, db: Database, *, local_key: str | None, proxy: ProxyTrust | None = None
    ) -> None:
        self.db = db
        self.local_key = local_key
        self.proxy = proxy

    def __call__(self, request: Request) -> Caller:
        if self.proxy is not None and (principals := self.proxy.principals(request)):
            return Caller(principals)
        token, from_cookie = bearer(request)
        if token is None:
            raise HTTPException(401, "missing bearer token", headers=UNAUTHORIZED)
        unsafe = request.method not in SAFE_METHODS
        if from_cookie and unsafe and CSRF_HEADER not in request.headers:
            raise HTTPException(403, f"a cookie-authenticated {request.method} needs {CSRF_HEADER}")
        return self.resolve(token)

    def resolve(self, token: str) -> Caller:
        if len(token) > MAX_TOKEN_CHARS:
            raise HTTPException(401, "unknown or revoked token", headers=UNAUTHORIZED)
        if self.local_key is not None and hmac.compare_digest(
            token.encode("utf-8"), self.local_key.encode("utf-8")
        ):
            return Caller((), may_choose_principals=True)
        with self.db.reader() as conn:
            principals = token_principals(conn, token)
        if principals is None:
            raise HTTPException(401, "unknown or revoked token", headers=UNAUTHORIZED)
        return Caller(tuple(principals))


def bearer(request: Request) -> tuple[str | None, bool]:
    """The token of `Authorization: Bearer ...`, else of the page's cookie (and which)."""
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip(), False
        return None, False
    cookie = request.cookies.get(COOKIE)
    return (cookie, True) if cookie else (None, False)
