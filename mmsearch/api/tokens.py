"""API tokens: made here, stored as SHA-256 only, resolved to principals by PostgreSQL.

A token is 32 random bytes (256 bits), so a plain SHA-256 is enough to store it: nothing
short of the token itself hashes to the stored value, and a slow password hash would only
slow every request. The owner adds, lists and removes tokens (`mmsearch token ...`); the
service, reading as the service login (a member of the app role), can only ask
`mmsearch.api_token_principals(hash)`.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from mmsearch.db.engine import validate_principals
from mmsearch.errors import UserError

if TYPE_CHECKING:
    import psycopg

TOKEN_PREFIX = "mms_"
TOKEN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,62}")


@dataclass(frozen=True)
class TokenInfo:
    """What `token list` shows: never the token, which is not stored."""

    name: str
    principals: list[str]
    created_at: datetime
    last_used_at: datetime | None


def new_secret(prefix: str = TOKEN_PREFIX) -> str:
    return prefix + secrets.token_urlsafe(32)


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def add_token(conn: psycopg.Connection, name: str, principals: list[str]) -> str:
    """Store a new token for `principals` under `name` and return it (shown once)."""
    if not TOKEN_NAME.fullmatch(name):
        raise UserError(f"invalid token name {name!r}: letters, digits and _.@- (up to 63)")
    if not principals:
        raise UserError("a token needs at least one --principal")
    checked = sorted(set(validate_principals(principals)))
    token = new_secret()
    inserted = conn.execute(
        "INSERT INTO mmsearch.api_token (name, token_sha256, principals) VALUES (%s, %s, %s)"
        " ON CONFLICT (name) DO NOTHING RETURNING id",
        (name, token_digest(token), checked),
    ).fetchone()
    if inserted is None:
        raise UserError(f"a token named {name!r} exists: remove it first or pick another name")
    return token


def list_tokens(conn: psycopg.Connection) -> list[TokenInfo]:
    rows = conn.execute(
        "SELECT name, principals, created_at, last_used_at FROM mmsearch.api_token ORDER BY name"
    ).fetchall()
    return [TokenInfo(*row) for row in rows]


def remove_token(conn: psycopg.Connection, name: str) -> None:
    deleted = conn.execute(
        "DELETE FROM mmsearch.api_token WHERE name = %s RETURNING id", (name,)
    ).fetchone()
    if deleted is None:
        raise UserError(f"no token named {name!r}")


def token_principals(conn: psycopg.Connection, token: str) -> list[str] | None:
    """The principals of `token`, or None when no such token exists (runs as the app role)."""
    row = conn.execute(
        "SELECT mmsearch.api_token_principals(%s)", (token_digest(token),)
    ).fetchone()
    return None if row is None or row[0] is None else list(row[0])
