"""Removing what the world no longer has: named records, vanished files, whole collections.

Each record goes in its own short transaction, as the ingest role: the record, its segments
(by cascade) and its ingest errors together, and once that has committed its video
thumbnails when no other record holds the same bytes. A killed removal leaves every record
whole or gone, and running it again finishes the job; searches never wait behind it.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from psycopg import sql
from psycopg.types.json import Jsonb

from mmsearch.errors import UserError
from mmsearch.ingest.store import lock_uri

if TYPE_CHECKING:
    from collections.abc import Iterable

    import psycopg

    from mmsearch.config import Settings
    from mmsearch.db.engine import Database

#: records fetched per round while a whole collection is removed
BATCH = 500


@dataclass
class Removal:
    """What a removal did: records removed, and the uris asked for that were not there."""

    removed: int = 0
    missing: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"removed": self.removed, "missing": self.missing}


@dataclass(frozen=True)
class CollectionSummary:
    name: str
    records: int
    ingest_errors: int
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "created_at": self.created_at.isoformat()}


def normalize_uri(uri: str | os.PathLike[str]) -> str:
    """A path as ingest stores it (absolute, symbolic links kept); a URL as it is."""
    text = os.fspath(uri)
    return text if "://" in text else os.path.abspath(text)


def collection_id(conn: psycopg.Connection, name: str) -> int:
    row = conn.execute("SELECT id FROM mmsearch.collection WHERE name = %s", (name,)).fetchone()
    if row is None:
        raise UserError(f"no collection named {name!r}")
    return int(row[0])


def remove_records(
    db: Database, settings: Settings, collection: str, uris: Iterable[str | os.PathLike[str]]
) -> Removal:
    """Remove the records of `collection` with these uris (paths are made absolute)."""
    wanted = list(dict.fromkeys(normalize_uri(u) for u in uris))
    with db.writer() as conn:
        cid = collection_id(conn, collection)
        stored = {
            uri
            for (uri,) in conn.execute(
                "SELECT uri FROM mmsearch.record WHERE collection_id = %s AND uri = ANY(%s)",
                (cid, wanted),
            )
        }
    removal = Removal(missing=[u for u in wanted if u not in stored])
    for uri in wanted:
        if uri in stored and remove_record(db, settings, cid, uri):
            removal.removed += 1
    return removal


def prune_vanished(
    db: Database, settings: Settings, cid: int, roots: Iterable[str | os.PathLike[str]]
) -> int:
    """Remove the collection's records at or under `roots` whose files are gone, and the
    ingest errors of files that are gone; return how many records went."""
    exact = [normalize_uri(r) for r in roots]
    with db.writer() as conn:
        uris = uris_under(conn, "record", cid, exact)
        gone_errors = [u for u in uris_under(conn, "ingest_error", cid, exact) if not exists(u)]
        conn.execute(
            "DELETE FROM mmsearch.ingest_error WHERE collection_id = %s AND uri = ANY(%s)",
            (cid, gone_errors),
        )
    vanished = [uri for uri in uris if not exists(uri)]
    return sum(remove_record(db, settings, cid, uri, only_if_vanished=True) for uri in vanished)


def uris_under(
    conn: psycopg.Connection, table: Literal["record", "ingest_error"], cid: int, roots: list[str]
) -> list[str]:
    """The distinct uris of `table` in a collection that are one of `roots` or below one."""
    prefixes = [r if r.endswith(os.sep) else r + os.sep for r in roots]
    query = sql.SQL(
        "SELECT DISTINCT uri FROM mmsearch.{} WHERE collection_id = %s AND (uri = ANY(%s)"
        " OR EXISTS (SELECT 1 FROM unnest(%s::text[]) AS p WHERE starts_with(uri, p)))"
    ).format(sql.Identifier(table))
    return [uri for (uri,) in conn.execute(query, (cid, roots, prefixes))]


def exists(uri: str) -> bool:
    """Whether the file behind a uri is there (a URL always counts as there)."""
    return "://" in uri or os.path.exists(uri)


def remove_collection(db: Database, settings: Settings, name: str) -> int:
    """Remove every record of a collection (one transaction each), then the collection."""
    removed = 0
    with db.writer() as conn:
        cid = collection_id(conn, name)
    while True:
        with db.writer() as conn:
            rows = conn.execute(
                "SELECT uri FROM mmsearch.record WHERE collection_id = %s ORDER BY id LIMIT %s",
                (cid, BATCH),
            ).fetchall()
        batch = [uri for (uri,) in rows]
        if not batch:
            break
        removed += sum(remove_record(db, settings, cid, uri) for uri in batch)
    with db.writer() as conn:  # its ingest errors go by cascade
        conn.execute("DELETE FROM mmsearch.collection WHERE id = %s", (cid,))
    return removed


def set_search_defaults(
    db: Database, name: str, fusion: str | None, weights: dict[str, float] | None
) -> None:
    """Keep a collection's own fusion and leg weights (none given: back to the defaults).

    A weight must name a leg (`keyword`, `sounds_like`, `spelled_like` or a space): kept
    defaults naming none would make every later search of the collection fail."""
    defaults = {"fusion": fusion, "weights": weights or None}
    with db.writer() as conn:
        cid = collection_id(conn, name)
        legs = {"keyword", "sounds_like", "spelled_like"} | {
            space for (space,) in conn.execute("SELECT name FROM mmsearch.space").fetchall()
        }
        if unknown := sorted(set(weights or {}) - legs):
            raise UserError(
                f"weights name no leg: {', '.join(unknown)} (legs: {', '.join(sorted(legs))})"
            )
        conn.execute(
            "UPDATE mmsearch.collection SET search_defaults = %s WHERE id = %s",
            (Jsonb({k: v for k, v in defaults.items() if v is not None}), cid),
        )


def list_collections(db: Database) -> list[CollectionSummary]:
    # counted per collection before the join: Citus plans no correlated subquery here
    with db.writer() as conn:
        rows = conn.execute(
            "SELECT c.name, coalesce(r.n, 0), coalesce(e.n, 0), c.created_at"
            " FROM mmsearch.collection AS c"
            " LEFT JOIN (SELECT collection_id, count(*) AS n FROM mmsearch.record"
            "            GROUP BY collection_id) AS r ON r.collection_id = c.id"
            " LEFT JOIN (SELECT collection_id, count(*) AS n FROM mmsearch.ingest_error"
            "            GROUP BY collection_id) AS e ON e.collection_id = c.id"
            " ORDER BY c.name"
        ).fetchall()
    return [CollectionSummary(*row) for row in rows]


def remove_record(
    db: Database, settings: Settings, cid: int, uri: str, *, only_if_vanished: bool = False
) -> bool:
    """Remove one record with its segments and errors; False if it was not there (or, with
    `only_if_vanished`, if its file is back). Serialised with an ingest of the same uri."""
    with db.writer() as conn:
        lock_uri(conn, cid, uri)
        if only_if_vanished and exists(uri):
            return False  # re-created while we looked: the ingest that holds it wins
        row = conn.execute(
            "DELETE FROM mmsearch.record WHERE collection_id = %s AND uri = %s RETURNING sha256",
            (cid, uri),
        ).fetchone()
        conn.execute(
            "DELETE FROM mmsearch.ingest_error WHERE collection_id = %s AND uri = %s", (cid, uri)
        )
    if row is None:
        return False
    drop_unused_thumbnails(db, settings, row[0])
    return True


def drop_unused_thumbnails(db: Database, settings: Settings, sha256: str) -> None:
    """Delete the thumbnails of these bytes unless another record (any collection) has them."""
    folder = settings.thumbs_dir(sha256)
    if not folder.exists():
        return
    with db.writer() as conn:
        (used,) = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM mmsearch.record WHERE sha256 = %s)", (sha256,)
        ).fetchone()
    if not used:
        shutil.rmtree(folder, ignore_errors=True)
