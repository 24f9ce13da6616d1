"""The search entry point: turn a query into legs, run the SQL as the caller, shape hits."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from psycopg.rows import dict_row

from mmsearch.errors import UserError
from mmsearch.query.builder import KeywordLeg, Leg, SearchRequest, VectorLeg, build
from mmsearch.query.filters import Filters
from mmsearch.spaces import list_spaces

if TYPE_CHECKING:
    import psycopg

    from mmsearch.db.engine import Database
    from mmsearch.embed.base import Modality
    from mmsearch.embed.registry import Embedders
    from mmsearch.ingest.types import Extracted
    from mmsearch.spaces import Space

Mode = Literal["hybrid", "vector", "keyword"]


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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan(
    db: Database,
    embedders: Embedders,
    query: str | Extracted | int,
    *,
    collection: str | list[str] | None = None,
    media_types: list[str] | None = None,
    tags: list[str] | None = None,
    tags_all: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
    mode: Mode = "hybrid",
    principals: list[str] | None = None,
    k: int = 10,
    weights: dict[str, float] | None = None,
    rrf_k: int = 60,
    segments: bool = False,
    filters: Filters | None = None,
    filter: str | None = None,
    spaces: list[str] | None = None,
) -> SearchRequest:
    """Turn a query and its options into a `SearchRequest`: encode it, pick legs, filters.

    `principals` matter here too: "more like segment N" reads N's vectors as the caller.
    `spaces` names the spaces whose vector legs run (default: every configured, registered
    one), e.g. to compare a new model's space with the old one's before switching.
    """
    if mode not in ("hybrid", "vector", "keyword"):
        raise UserError(f"unknown mode {mode!r}: use hybrid, vector or keyword")
    if not 1 <= k <= 1000:
        raise UserError("k must be between 1 and 1000")
    if filters is None:
        collections = [collection] if isinstance(collection, str) else list(collection or [])
        filters = Filters(
            collections=tuple(collections),
            media_types=tuple(media_types or ()),
            tags_any=tuple(tags or ()),
            tags_all=tuple(tags_all or ()),
            metadata=dict(metadata or {}),
        )
    if filter is not None:  # an expression (`mmsearch.query.expression`), ANDed to the rest
        from mmsearch.query.expression import parse

        filters = filters.also(parse(filter))
    weights = weights or {}
    principals = principals or []
    with db.transaction() as conn:
        registered = {s.name: s for s in list_spaces(conn)}
    configured = [name for name in embedders.names() if name in registered]
    if spaces is not None:
        unknown = [name for name in spaces if name not in configured]
        if unknown:
            raise UserError(
                f"cannot search space {unknown[0]!r}: configured and registered are"
                f" {', '.join(configured) or 'none'}"
            )
        configured = [name for name in configured if name in spaces]
    exclude: int | None = None
    text: str | None = None
    vectors: dict[str, np.ndarray] = {}
    if isinstance(query, int):
        exclude = query
        vectors = _segment_vectors(db, query, [registered[n] for n in configured], principals)
        mode = "vector"
    elif isinstance(query, Path):
        raise TypeError("decode a query file first (mmsearch.ingest.extract.extract_query_file)")
    elif not isinstance(query, str):  # an example, decoded
        extracted = query
        text = _query_text(extracted) if extracted.media_type == "text" else None
        if mode != "keyword":
            vectors = _encode_example(embedders, extracted, configured)
    else:
        text = query.strip()
        if not text:
            raise UserError("empty query")
        if "\x00" in text:  # PostgreSQL text cannot hold it, and no content contains it
            raise UserError("the query contains a NUL character")
        if mode != "keyword":
            vectors = _encode_text(embedders, text, configured)
    # The floors registered with each space (as the SQL functions use them); "more like this
    # segment" compares stored vectors with each other and takes the plain nearest.
    floors = {} if isinstance(query, int) else {n: registered[n].min_similarity for n in vectors}
    legs: list[Leg] = [
        VectorLeg(registered[name], vector, weights.get(name, 1.0), floors.get(name))
        for name, vector in vectors.items()
    ]
    if text and mode != "vector":
        legs.append(KeywordLeg(text, weights.get("keyword", 1.0)))
    if not legs:
        raise UserError("no search leg applies to this query (no space encodes it)")
    candidates = max(4 * k, 40) if not segments else max(2 * k, 40)
    return SearchRequest(
        tuple(legs),
        filters,
        k=k,
        candidates=candidates * (1 if segments else 3),
        rrf_k=rrf_k,
        per_record=not segments,
        exclude_segment=exclude,
    )


def search(
    db: Database,
    embedders: Embedders,
    query: str | Extracted | int,
    *,
    principals: list[str] | None = None,
    ef_search: int | None = None,
    **options: Any,
) -> list[Hit]:
    """Search as `principals` (RLS decides visibility); options as `plan`; see `Client.search`."""
    request = plan(db, embedders, query, principals=principals, **options)
    with db.reader(principals or []) as conn:
        rows = run(conn, request, ef_search=ef_search)
    return [_hit(row) for row in rows]


def run(
    conn: psycopg.Connection, request: SearchRequest, *, ef_search: int | None = None
) -> list[dict[str, Any]]:
    """Execute `request` in the caller's transaction (as its role: RLS applies); rows of `build`.

    Sets what the vector legs need for this transaction: relaxed iterative HNSW scans, an
    `ef_search` that covers the candidate list, and `enable_sort` off. The last is because
    under row-level security the planner may not use column statistics for our filter
    operators (nor for the policy's own), guesses that ~1% of rows pass, and then prefers
    sorting them to the index even with no filter at all; with sorts disabled where an
    alternative exists, the HNSW index is the ordered path (selective filters still rank
    exactly: the statement decides that itself, see `builder`).
    """
    conn.execute("SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true)")
    ef = ef_search or max(request.candidates, 40)
    conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(min(ef, 1000)),))
    if any(isinstance(leg, VectorLeg) for leg in request.legs):
        # a planning setting that the statement's text determines: cached plans stay right
        conn.execute("SELECT set_config('enable_sort', 'off', true)")
    statement, params = build(request)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(statement, params)
        return cur.fetchall()


def explain(db: Database, request: SearchRequest) -> str:
    """The SQL of a request and its parameters, for humans (`--explain`); vectors abridged."""
    statement, params = build(request)
    with db.reader() as conn:
        text = statement.as_string(conn)
    shown = {
        name: f"<{len(value)}-d vector>" if isinstance(value, np.ndarray) else value
        for name, value in params.items()
    }
    return f"{text}\n-- parameters: {shown}"


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
    )


def _encode_text(embedders: Embedders, text: str, names: list[str]) -> dict[str, np.ndarray]:
    """Only the spaces that take a typed query load their models."""
    takes_text = set(embedders.supporting("text", query=True))
    return {
        name: embedders.get(name).encode_texts([text], query=True)[0]
        for name in names
        if name in takes_text
    }


def _encode_example(embedders: Embedders, extracted: Extracted, names: list[str]) -> dict[str, Any]:
    """Query by example: every space that takes the example's modality as a query."""
    from mmsearch.ingest.embedding import embed_segments

    modality: Modality = extracted.media_type
    takes_it = set(embedders.supporting(modality, query=True))
    out: dict[str, np.ndarray] = {}
    for name in names:
        if name not in takes_it:
            continue
        embedder = embedders.get(name)
        vectors = [v for _, v in embed_segments(embedder, extracted.segments)]
        if vectors:
            from mmsearch.embed.base import normalize

            out[name] = normalize(np.mean(vectors, axis=0, keepdims=True))[0]
    return out


def _query_text(extracted: Extracted) -> str:
    return " ".join(s.content or "" for s in extracted.segments)[:2000]


def _segment_vectors(
    db: Database, segment_id: int, spaces: list[Space], principals: list[str]
) -> dict[str, np.ndarray]:
    """The stored vectors of a segment the caller may see ("more like this")."""
    from psycopg import sql

    columns = sql.SQL(", ").join(sql.Identifier(s.column_name) for s in spaces)
    with db.reader(principals) as conn:
        row = conn.execute(
            sql.SQL("SELECT {} FROM mmsearch.segment WHERE id = %s").format(columns),
            (segment_id,),
        ).fetchone()
    if row is None:
        raise UserError(f"segment {segment_id} not found")
    return {
        s.name: np.asarray(v.to_numpy() if hasattr(v, "to_numpy") else v, dtype=np.float32)
        for s, v in zip(spaces, row, strict=True)
        if v is not None
    }
