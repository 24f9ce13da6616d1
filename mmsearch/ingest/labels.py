"""Changing who may see records (`acl`) and how they are labelled (`tags`) without re-ingest.

One UPDATE in one transaction, as the ingest role: PostgreSQL's grants decide who may do it
(the app, analyst and BI roles hold no UPDATE on `record`), and the record→segment trigger
carries a new acl to every segment inside the same transaction, so a search sees the old
access or the new one, never a mix.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Literal

from psycopg import sql

from mmsearch.errors import UserError
from mmsearch.ingest.lifecycle import collection_id, normalize_uri

if TYPE_CHECKING:
    import os

    import psycopg

    from mmsearch.db.engine import Database

Column = Literal["acl", "tags"]
Change = Literal["set", "add", "remove"]

#: the new value of the column, from the old one ({col}) and the given values (%(values)s)
NEW_VALUE: dict[Change, str] = {
    "set": "%(values)s::text[]",
    "add": "{col} || ARRAY(SELECT v FROM unnest(%(values)s::text[]) AS v WHERE NOT v = ANY({col}))",
    "remove": "ARRAY(SELECT v FROM unnest({col}) WITH ORDINALITY AS t (v, i)"
    " WHERE NOT v = ANY(%(values)s::text[]) ORDER BY i)",
}


def change_labels(
    db: Database,
    column: Column,
    change: Change,
    values: Iterable[str],
    *,
    collection: str,
    uris: Sequence[str | os.PathLike[str]] | None = None,
) -> int:
    """Set, add to or remove from the acl or tags of the named records (every record of the
    collection when `uris` is None); return how many records changed.

    All or nothing: a uri the collection does not hold, or an acl left empty, changes nothing.
    """
    import psycopg

    checked = checked_values(column, change, values)
    wanted = None if uris is None else [normalize_uri(u) for u in uris]
    new = sql.SQL(NEW_VALUE[change]).format(col=sql.Identifier(column))
    update = sql.SQL(
        "UPDATE mmsearch.record SET {col} = {new} WHERE collection_id = %(cid)s"
        " AND (%(uris)s::text[] IS NULL OR uri = ANY(%(uris)s)) AND {col} IS DISTINCT FROM {new}"
    ).format(col=sql.Identifier(column), new=new)
    try:
        with db.writer() as conn:
            cid = collection_id(conn, collection)
            if wanted is not None:
                refuse_missing(conn, cid, collection, wanted)
            return conn.execute(update, {"values": checked, "cid": cid, "uris": wanted}).rowcount
    except psycopg.errors.CheckViolation:
        raise UserError(
            "that would leave a record visible to no one; give it another principal first"
            " (or use acl set)"
        ) from None


def checked_values(column: Column, change: Change, values: Iterable[str]) -> list[str]:
    """Principals in their strict form, tags without NUL; duplicates dropped, order kept."""
    from mmsearch.db.engine import validate_principals
    from mmsearch.ingest.pipeline import refuse_nul

    unique = list(dict.fromkeys(values))
    if column == "acl":
        unique = validate_principals(unique)
    else:
        refuse_nul(unique, "a tag")
    if not unique and (column == "acl" or change != "set"):
        noun = "principal" if column == "acl" else "tag"
        raise UserError(f"give at least one {noun} to {change}")
    return unique


def refuse_missing(conn: psycopg.Connection, cid: int, collection: str, uris: list[str]) -> None:
    stored = {
        uri
        for (uri,) in conn.execute(
            "SELECT uri FROM mmsearch.record WHERE collection_id = %s AND uri = ANY(%s)",
            (cid, uris),
        )
    }
    missing = [u for u in uris if u not in stored]
    if missing:
        shown = ", ".join(repr(u) for u in missing[:3]) + (" …" if len(missing) > 3 else "")
        raise UserError(f"not in collection {collection}: {shown}; nothing changed")
