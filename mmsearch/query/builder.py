"""Compose one hybrid search statement: a ranked CTE per leg, fused by weighted RRF.

Each ANN leg orders one space's column by the space's distance operator so PostgreSQL can
walk its HNSW index (with iterative scans, filtered legs still fill their candidate list);
the keyword leg ranks `content_tsv` matches with `ts_rank_cd`. Fusion sums
`weight / (rrf_k + rank)` per segment; the best segment of each record represents it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from psycopg import sql

from mmsearch.query.filters import Filters
from mmsearch.spaces import Space

OPERATORS = {"cosine": "<=>", "ip": "<#>", "l2": "<->"}
#: similarity shown to users, from pgvector's distance `d`
SIMILARITY = {"cosine": "1 - {d}", "ip": "-({d})", "l2": "-({d})"}
TS_CONFIG = "english"


@dataclass(frozen=True)
class VectorLeg:
    space: Space
    vector: np.ndarray
    weight: float = 1.0
    min_similarity: float | None = None

    @property
    def name(self) -> str:
        return self.space.name


@dataclass(frozen=True)
class KeywordLeg:
    text: str
    weight: float = 1.0
    name: str = "keyword"


Leg = VectorLeg | KeywordLeg


@dataclass(frozen=True)
class SearchRequest:
    legs: tuple[Leg, ...]
    filters: Filters
    k: int = 10
    candidates: int = 100
    rrf_k: int = 60
    per_record: bool = True
    exclude_segment: int | None = None


def build(request: SearchRequest) -> tuple[sql.Composed, dict[str, Any]]:
    where, params = request.filters.conditions()
    if request.exclude_segment is not None:
        where = sql.SQL("{} AND s.id <> {}").format(where, sql.Placeholder("exclude_segment"))
        params["exclude_segment"] = request.exclude_segment
    params.update(k=request.k, candidates=request.candidates, rrf_k=request.rrf_k)
    ctes: list[sql.Composable] = []
    selects: list[sql.Composable] = []
    keyword: KeywordLeg | None = None
    for index, leg in enumerate(request.legs):
        cte = sql.Identifier(f"leg_{index}")
        weight = f"w_{index}"
        params[weight] = float(leg.weight)
        if isinstance(leg, VectorLeg):
            body = _vector_leg(leg, index, where, params)
        else:
            keyword = leg
            params["keyword"] = leg.text
            body = _keyword_leg(where)
        ctes.append(sql.SQL("{} AS ({})").format(cte, body))
        selects.append(
            sql.SQL(
                "SELECT {leg}::text AS leg, id, rank, score, {w}::float8 AS weight FROM {cte}"
            ).format(leg=sql.Literal(leg.name), w=sql.Placeholder(weight), cte=cte)
        )
    ctes.append(sql.SQL("legs AS ({})").format(sql.SQL(" UNION ALL ").join(selects)))
    ctes.append(
        sql.SQL(
            "fused AS (SELECT id, sum(weight / ({rrf_k} + rank)) AS score,"
            " jsonb_object_agg(leg, rank) AS ranks,"
            " jsonb_object_agg(leg, round(score::numeric, 4)) AS leg_scores"
            " FROM legs GROUP BY id)"
        ).format(rrf_k=sql.Placeholder("rrf_k"))
    )
    if request.per_record:
        ctes.append(
            sql.SQL(
                "best AS (SELECT DISTINCT ON (s.record_id) f.* FROM fused f"
                " JOIN mmsearch.segment s ON s.id = f.id ORDER BY s.record_id, f.score DESC, f.id)"
            )
        )
    else:
        ctes.append(sql.SQL("best AS (SELECT * FROM fused)"))
    snippet = (
        sql.SQL(
            "CASE WHEN b.ranks ? 'keyword' THEN ts_headline({cfg}, s.content,"
            " websearch_to_tsquery({cfg}, {q}),"
            " 'MaxFragments=2, MaxWords=25, MinWords=8, StartSel=«, StopSel=»')"
            " ELSE coalesce(left(s.content, 240), s.metadata->>'caption') END"
        ).format(cfg=sql.Literal(TS_CONFIG), q=sql.Placeholder("keyword"))
        if keyword is not None
        else sql.SQL("coalesce(left(s.content, 240), s.metadata->>'caption')")
    )
    query = sql.SQL(
        "WITH {ctes} SELECT r.id AS record_id, c.name AS collection, r.uri, r.title,"
        " r.media_type, s.id AS segment_id, s.kind, s.start_s, s.end_s, s.char_start, s.char_end,"
        " b.score, {snippet} AS snippet, b.ranks, b.leg_scores, s.metadata AS segment_metadata"
        " FROM best b JOIN mmsearch.segment s ON s.id = b.id"
        " JOIN mmsearch.record r ON r.id = s.record_id"
        " JOIN mmsearch.collection c ON c.id = r.collection_id"
        " ORDER BY b.score DESC, s.id LIMIT {k}"
    ).format(ctes=sql.SQL(", ").join(ctes), snippet=snippet, k=sql.Placeholder("k"))
    return query, params


def _vector_leg(
    leg: VectorLeg, index: int, where: sql.Composable, params: dict[str, Any]
) -> sql.Composable:
    space = leg.space
    vector_param = f"v_{index}"
    params[vector_param] = np.asarray(leg.vector, dtype=np.float32)
    vtype = "halfvec" if space.dim > 2000 else "vector"
    distance = sql.SQL("s.{col} {op} {v}::{vtype}({dim})").format(
        col=sql.Identifier(space.column_name),
        op=sql.SQL(OPERATORS[space.distance]),
        v=sql.Placeholder(vector_param),
        vtype=sql.SQL(vtype),
        dim=sql.Literal(space.dim),
    )
    similarity = sql.SQL(SIMILARITY[space.distance].format(d="d"))
    floor: sql.Composable = sql.SQL("")
    if leg.min_similarity is not None:
        params[f"floor_{index}"] = leg.min_similarity
        floor = sql.SQL(" WHERE {} >= {}").format(similarity, sql.Placeholder(f"floor_{index}"))
    return sql.SQL(
        "SELECT id, row_number() OVER (ORDER BY d, id) AS rank, {similarity} AS score FROM ("
        "SELECT s.id, {distance} AS d FROM mmsearch.segment s"
        " JOIN mmsearch.record r ON r.id = s.record_id"
        " WHERE s.{col} IS NOT NULL AND {where}"
        " ORDER BY d LIMIT {candidates}) AS nearest{floor}"
    ).format(
        floor=floor,
        similarity=similarity,
        distance=distance,
        col=sql.Identifier(space.column_name),
        where=where,
        candidates=sql.Placeholder("candidates"),
    )


def _keyword_leg(where: sql.Composable) -> sql.Composable:
    return sql.SQL(
        "SELECT id, row_number() OVER (ORDER BY score DESC, id) AS rank, score FROM ("
        "SELECT s.id, ts_rank_cd(s.content_tsv, q) AS score"
        " FROM mmsearch.segment s JOIN mmsearch.record r ON r.id = s.record_id,"
        " websearch_to_tsquery({cfg}, {text}) AS q"
        " WHERE s.content_tsv @@ q AND {where}"
        " ORDER BY score DESC LIMIT {candidates}) AS matches"
    ).format(
        cfg=sql.Literal(TS_CONFIG),
        text=sql.Placeholder("keyword"),
        where=where,
        candidates=sql.Placeholder("candidates"),
    )
