"""The named-vector registry: one row in `mmsearch.space` and one segment column per space.

Registration goes through the SQL function `mmsearch.register_space`, so analysts and
the Python API share one rule: the same model again is a no-op, another model under a
used name is refused (vectors of two models never share a column).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from psycopg.types.json import Jsonb

from mmsearch.errors import SpaceConflict, UserError

if TYPE_CHECKING:
    from collections.abc import Iterable

    import psycopg

    from mmsearch.db.engine import Database
    from mmsearch.embed.base import Embedder
    from mmsearch.embed.registry import Embedders


@dataclass(frozen=True)
class Space:
    name: str
    modalities: tuple[str, ...]
    model_id: str
    revision: str
    dim: int
    distance: str
    column_name: str
    #: how to query the space, e.g. {"min_similarity": 0.15} (applied by the SQL search);
    #: not part of its identity
    options: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Space:
        return cls(
            name=row["name"],
            modalities=tuple(row["modalities"]),
            model_id=row["model_id"],
            revision=row["revision"],
            dim=row["dim"],
            distance=row["distance"],
            column_name=row["column_name"],
            options=dict(row["options"] or {}),
        )


def register_space(
    conn: psycopg.Connection,
    name: str,
    *,
    modalities: list[str],
    model_id: str,
    revision: str,
    dim: int,
    distance: str,
    options: dict[str, Any] | None = None,
) -> Space:
    """Register (or find, if identical) a space; raise `SpaceConflict` if the name is bound."""
    import psycopg
    from psycopg.rows import dict_row

    try:
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                "SELECT * FROM mmsearch.register_space(%s, %s, %s, %s, %s, %s, %s)",
                (name, sorted(modalities), model_id, revision, dim, distance, Jsonb(options or {})),
            )
            row = cur.fetchone()
    except psycopg.Error as exc:
        message = exc.diag.message_primary or str(exc)
        if exc.sqlstate == "MS001":
            raise SpaceConflict(message) from None
        if exc.sqlstate in {"22023", "23514"}:
            raise UserError(f"cannot register space {name!r}: {message}") from None
        raise
    assert row is not None
    return Space.from_row(row)


def register_embedder(conn: psycopg.Connection, name: str, embedder: Embedder) -> Space:
    """Register the space that `embedder` fills, with its similarity floor for queries."""
    floor = embedder.min_similarity
    return register_space(
        conn,
        name,
        modalities=sorted(embedder.modalities),
        model_id=embedder.model_id,
        revision=embedder.revision,
        dim=embedder.dim,
        distance=embedder.distance,
        options={} if floor is None else {"min_similarity": floor},
    )


def register_configured(
    db: Database, embedders: Embedders, names: Iterable[str] | None = None
) -> dict[str, Space]:
    """Register the configured spaces (or `names`), loading their models, by name.

    Registration needs each model's dimension and identity, hence the loads; the rows are
    written in one transaction (retried when a lock wait times out: a new space's column
    and index must not queue every search behind them), and registering the same model
    again is a no-op.
    """
    wanted = list(names) if names is not None else embedders.names()
    loaded = {name: embedders.get(name) for name in wanted}
    return db.retrying(
        lambda conn: {name: register_embedder(conn, name, e) for name, e in loaded.items()}
    )


def list_spaces(conn: psycopg.Connection) -> list[Space]:
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT * FROM mmsearch.space ORDER BY id")
        return [Space.from_row(row) for row in cur.fetchall()]


def drop_space(db: Database, name: str) -> Space:
    """Drop a space: its registry row, its segment column and HNSW index, its backfill skips.

    Dropping the column takes an ACCESS EXCLUSIVE lock on `segment` for a catalog change
    only (no rewrite); `Database.retrying` keeps it from queueing searches behind a long
    transaction.
    """
    import psycopg
    from psycopg.rows import dict_row

    def drop(conn: psycopg.Connection) -> dict[str, Any]:
        with conn.cursor(row_factory=dict_row) as cur:
            return cur.execute("SELECT * FROM mmsearch.drop_space(%s)", (name,)).fetchone()

    try:
        return Space.from_row(db.retrying(drop))
    except psycopg.errors.InvalidParameterValue as exc:
        raise UserError(exc.diag.message_primary or str(exc)) from None
