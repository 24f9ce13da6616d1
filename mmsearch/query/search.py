"""The search entry points: plan a request once, then run it or explain it.

The search itself is SQL (`mmsearch.search_request`, in `sql/047_search_core.sql`): the
same function analysts call through `mmsearch.search(...)`, so the API and SQL return the
same ranked lists. This module validates the options, encodes the query (the only part that
needs models), sends one request in one transaction as the caller, and shapes the rows into
`Hit`s. `plan` does the model work once; `run` and `explain` reuse its request.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from mmsearch.errors import UserError
from mmsearch.query.encode import encode
from mmsearch.query.request import SearchOptions

if TYPE_CHECKING:
    from mmsearch.db.engine import Database
    from mmsearch.embed.registry import Embedders
    from mmsearch.ingest.types import Extracted


@dataclass(frozen=True)
class Hit:
    """One result: a record represented by its best segment, with per-leg ranks."""

    record_id: int
    collection: str
    uri: str
    title: str
    media_type: str
    segment_id: int
    kind: str
    start_s: float | None
    end_s: float | None
    char_start: int | None
    char_end: int | None
    score: float
    snippet: str | None
    ranks: dict[str, int]
    leg_scores: dict[str, float]
    #: time-coded media: the span of the neighbouring segments of the record that the
    #: search also found (shot, sentence, frame text, sound), the hit's own segment among them
    moment_start_s: float | None = None
    moment_end_s: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SearchPlan:
    """A search ready to run: the request the SQL takes (query encoded), and who asks."""

    request: dict[str, Any]
    principals: tuple[str, ...]


def plan(
    db: Database,
    embedders: Embedders,
    subject: str | Extracted | int,
    options: SearchOptions | None = None,
) -> SearchPlan:
    """Encode `subject` (text, a decoded example, or a segment id) for the spaces in use."""
    options = options or SearchOptions()
    principals = tuple(options.principals or ())
    with db.reader(principals) as conn:
        registered, limits = conn.execute(
            "SELECT ARRAY(SELECT name FROM mmsearch.space ORDER BY id), mmsearch.search_limits()"
        ).fetchone()
    fields = encode(embedders, subject, options, registered, limits)
    request = {**options.request(), **{k: v for k, v in fields.items() if v is not None}}
    return SearchPlan(request, principals)


def run(db: Database, planned: SearchPlan) -> list[Hit]:
    """Run a planned search as its caller (one statement in one transaction; RLS applies)."""
    with db.reader(planned.principals) as conn, _user_errors():
        cur = conn.cursor(row_factory=dict_row)
        rows = cur.execute(
            "SELECT * FROM mmsearch.search_request(%s)", (Jsonb(planned.request),)
        ).fetchall()
    return [_hit(row) for row in rows]


def search(
    db: Database,
    embedders: Embedders,
    subject: str | Extracted | int,
    options: SearchOptions | None = None,
) -> list[Hit]:
    """Plan and run in one go; see `Client.search`."""
    return run(db, plan(db, embedders, subject, options))


def explain(db: Database, planned: SearchPlan, *, analyze: bool = False) -> str:
    """The SQL of a planned search, ready to paste into psql; with `analyze`, its plan.

    The script is what `mmsearch.search_request` runs (the settings it makes, the statement
    with every value inlined as a literal); run by the caller it returns the same rows under
    row-level security. `analyze` runs it as the search functions' owner role, which only
    the database owner may take on: the plan then shows what the search really does.
    """
    with db.reader(planned.principals) as conn, _user_errors():
        settings, statement, script = conn.execute(
            "SELECT * FROM mmsearch.search_statement(%s)", (Jsonb(planned.request),)
        ).fetchone()
        call = sql.SQL("SELECT * FROM mmsearch.search_request({});").format(
            sql.Literal(Jsonb(planned.request))
        )
        shown = f"-- the call:\n{call.as_string(conn)}\n-- the SQL it runs:\n{script}"
    if not analyze:
        return shown
    return f"{shown}\n-- its plan, as the search role:\n{_analyze(db, settings, statement)}"


def _analyze(db: Database, settings: dict[str, str], statement: str) -> str:
    with db.transaction() as conn, _user_errors():
        owner = conn.execute(
            "SELECT r.rolname FROM pg_proc AS p JOIN pg_roles AS r ON r.oid = p.proowner"
            " WHERE p.oid = 'mmsearch.search_request(jsonb)'::regprocedure"
        ).fetchone()[0]
        try:
            conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(owner)))
        except psycopg.errors.InsufficientPrivilege:
            raise UserError("--analyze needs the database owner's connection") from None
        for name, value in settings.items():  # SET LOCAL: what Citus forwards to its shards
            conn.execute(
                sql.SQL("SET LOCAL {} = {}").format(
                    sql.Identifier(*name.split(".")), sql.Literal(value)
                )
            )
        rows = conn.execute(sql.SQL("EXPLAIN (ANALYZE, BUFFERS) ") + sql.SQL(statement))
        return "\n".join(row[0] for row in rows)


@contextmanager
def _user_errors() -> Iterator[None]:
    """The search's own checks (SQLSTATE 22023, "not found") as one-line `UserError`s."""
    try:
        yield
    except (psycopg.errors.InvalidParameterValue, psycopg.errors.NoDataFound) as exc:
        raise UserError(exc.diag.message_primary or str(exc)) from None


def _hit(row: dict[str, Any]) -> Hit:
    return Hit(
        record_id=row["record_id"],
        collection=row["collection"],
        uri=row["uri"],
        title=row["title"],
        media_type=row["media_type"],
        segment_id=row["segment_id"],
        kind=row["kind"],
        start_s=row["start_s"],
        end_s=row["end_s"],
        char_start=row["char_start"],
        char_end=row["char_end"],
        score=float(row["score"]),
        snippet=row["snippet"],
        ranks={k: int(v) for k, v in row["ranks"].items()},
        leg_scores={k: float(v) for k, v in row["leg_scores"].items()},
        moment_start_s=row["moment_start_s"],
        moment_end_s=row["moment_end_s"],
    )
