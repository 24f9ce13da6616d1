"""Compose one hybrid search statement: a ranked CTE per leg, fused by weighted RRF.

Each vector leg decides at run time, inside the statement, how to rank. It first collects
up to `exact_below` rows that pass the filters (and row-level security) with their
distances. If that is all of them, the filter is selective: those rows are ranked exactly,
which is cheap and never short of results. Otherwise the leg walks the space's HNSW index
(iterative scans keep it going until the candidate list is full). Only the branch whose
one-time condition holds is executed. The keyword leg ranks `content_tsv` matches of any of
the query's words (websearch syntax when it has quotes, "or" or -word: `keyword_query` in
sql/050) with `ts_rank_cd`. Fusion sums `weight * confidence / (rrf_k + rank)` per segment
(reciprocal rank fusion, each vector hit scaled by how far its similarity clears the space's
noise floor and each keyword hit by the share of the query's words it holds: plain RRF lets
two barely-relevant legs outvote one near-certain match); the best segment of each record
represents it.
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
    #: always rank every matching row by true distance (ground truth for recall)
    exact: bool = False

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
    #: a vector leg with fewer matching rows than this ranks them exactly, not by HNSW
    exact_below: int = 2000


def build(request: SearchRequest) -> tuple[sql.Composed, dict[str, Any]]:
    where, params = request.filters.conditions()
    if request.exclude_segment is not None:
        where = sql.SQL("{} AND s.id <> {}").format(where, sql.Placeholder("exclude_segment"))
        params["exclude_segment"] = request.exclude_segment
    params.update(
        k=request.k,
        candidates=request.candidates,
        rrf_k=request.rrf_k,
        exact_below=request.exact_below,
    )
    ctes: list[sql.Composable] = []
    selects: list[sql.Composable] = []
    keyword: KeywordLeg | None = None
    for index, leg in enumerate(request.legs):
        cte = sql.Identifier(f"leg_{index}")
        weight = f"w_{index}"
        params[weight] = float(leg.weight)
        if isinstance(leg, VectorLeg):
            body = _vector_leg(leg, index, where, params, ctes)
        else:
            keyword = leg
            params["keyword"] = leg.text
            body = _keyword_leg(where)
        ctes.append(sql.SQL("{} AS ({})").format(cte, body))
        selects.append(
            sql.SQL(
                "SELECT {leg}::text AS leg, id, record_id, rank, score, confidence,"
                " {w}::float8 AS weight FROM {cte}"
            ).format(leg=sql.Literal(leg.name), w=sql.Placeholder(weight), cte=cte)
        )
    ctes.append(sql.SQL("legs AS ({})").format(sql.SQL(" UNION ALL ").join(selects)))
    ctes.append(
        sql.SQL(
            "fused AS (SELECT id, record_id, sum(weight * confidence / ({rrf_k} + rank))"
            " AS score,"
            " jsonb_object_agg(leg, rank) AS ranks,"
            " jsonb_object_agg(leg, round(score::numeric, 4)) AS leg_scores"
            " FROM legs GROUP BY id, record_id)"
        ).format(rrf_k=sql.Placeholder("rrf_k"))
    )
    if request.per_record:
        ctes.append(
            sql.SQL(
                "best AS (SELECT DISTINCT ON (record_id) * FROM fused"
                " ORDER BY record_id, score DESC, id)"
            )
        )
    else:
        ctes.append(sql.SQL("best AS (SELECT * FROM fused)"))
    snippet = (
        sql.SQL(
            "CASE WHEN b.ranks ? 'keyword' THEN ts_headline({cfg}, s.content,"
            " mmsearch.keyword_query({q}),"
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
        # The k best first, then their rows by primary key: under RLS the planner guesses
        # ~1% of segments are visible and would otherwise hash-join a scan of all of them.
        " FROM (SELECT * FROM best ORDER BY score DESC, id LIMIT {k}) AS b"
        " CROSS JOIN LATERAL (SELECT * FROM mmsearch.segment s WHERE s.id = b.id OFFSET 0) AS s"
        " JOIN mmsearch.record r ON r.id = s.record_id"
        " JOIN mmsearch.collection c ON c.id = r.collection_id"
        " ORDER BY b.score DESC, s.id"
    ).format(ctes=sql.SQL(", ").join(ctes), snippet=snippet, k=sql.Placeholder("k"))
    return query, params


def _vector_leg(
    leg: VectorLeg,
    index: int,
    where: sql.Composable,
    params: dict[str, Any],
    ctes: list[sql.Composable],
) -> sql.Composable:
    space = leg.space
    vector_param = f"v_{index}"
    params[vector_param] = np.asarray(leg.vector, dtype=np.float32)
    vtype = "halfvec" if space.dim > 2000 else "vector"
    names = {
        "distance": sql.SQL("s.{col} {op} {v}::{vtype}({dim})").format(
            col=sql.Identifier(space.column_name),
            op=sql.SQL(OPERATORS[space.distance]),
            v=sql.Placeholder(vector_param),
            vtype=sql.SQL(vtype),
            dim=sql.Literal(space.dim),
        ),
        "col": sql.Identifier(space.column_name),
        "where": where,
        "matching": sql.Identifier(f"matching_{index}"),
        "cap": sql.SQL("")
        if leg.exact
        else sql.SQL(" LIMIT {}").format(sql.Placeholder("exact_below")),
        "candidates": sql.Placeholder("candidates"),
        "exact_below": sql.Placeholder("exact_below"),
    }
    # The rows that pass, record by record (each one's segments by index): the cap then
    # stops the scan early when many pass, and a selective filter reads each visible record
    # once. MATERIALIZED: computed once, then counted and (if few) ranked from memory.
    ctes.append(
        sql.SQL(
            "{matching} AS MATERIALIZED (SELECT s.id, s.record_id, {distance} AS d"
            " FROM mmsearch.record r CROSS JOIN LATERAL (SELECT * FROM mmsearch.segment s"
            " WHERE s.record_id = r.id AND s.{col} IS NOT NULL OFFSET 0) AS s"
            " WHERE {where}{cap})"
        ).format(**names)
    )
    exact = sql.SQL("SELECT id, record_id, d FROM {matching}").format(**names)
    if leg.exact:
        nearest = sql.SQL("{exact} ORDER BY d LIMIT {candidates}").format(exact=exact, **names)
    else:
        # Either rank the few matching rows exactly, or walk the index and check each
        # segment it yields against its record by primary key (LATERAL keeps the planner
        # from joining the filtered records some other way).
        nearest = sql.SQL(
            "({exact} WHERE (SELECT count(*) FROM {matching}) < {exact_below}"
            " ORDER BY d LIMIT {candidates}) UNION ALL"
            " (SELECT s.id, s.record_id, {distance} AS d FROM mmsearch.segment s"
            " CROSS JOIN LATERAL (SELECT FROM mmsearch.record r"
            " WHERE r.id = s.record_id AND {where} OFFSET 0) AS passes"
            " WHERE s.{col} IS NOT NULL AND (SELECT count(*) FROM {matching}) >= {exact_below}"
            " ORDER BY d LIMIT {candidates})"
        ).format(exact=exact, **names)
    similarity = sql.SQL(SIMILARITY[space.distance].format(d="d"))
    floor: sql.Composable = sql.SQL("")
    confidence: sql.Composable = sql.SQL("1.0")
    if leg.min_similarity is not None:
        name = sql.Placeholder(f"floor_{index}")
        params[f"floor_{index}"] = leg.min_similarity
        floor = sql.SQL(" WHERE {} >= {}").format(similarity, name)
        if space.distance == "cosine":  # bounded by 1: (floor, 1] maps onto (0, 1]
            confidence = sql.SQL("({sim} - {f}) / (1.0 - {f})").format(sim=similarity, f=name)
    return sql.SQL(
        "SELECT id, record_id, row_number() OVER (ORDER BY d, id) AS rank,"
        " {similarity} AS score, {confidence}::float8 AS confidence"
        " FROM ({nearest}) AS nearest{floor}"
    ).format(similarity=similarity, confidence=confidence, nearest=nearest, floor=floor, **names)


def _keyword_leg(where: sql.Composable) -> sql.Composable:
    return sql.SQL(
        "SELECT id, record_id, row_number() OVER (ORDER BY score DESC, id) AS rank, score,"
        " mmsearch.keyword_coverage(tsv, {text}) AS confidence FROM ("
        "SELECT s.id, s.record_id, s.content_tsv AS tsv, ts_rank_cd(s.content_tsv, q) AS score"
        " FROM mmsearch.segment s JOIN mmsearch.record r ON r.id = s.record_id,"
        " mmsearch.keyword_query({text}) AS q"
        " WHERE s.content_tsv @@ q AND {where}"
        " ORDER BY score DESC LIMIT {candidates}) AS matches"
    ).format(
        text=sql.Placeholder("keyword"),
        where=where,
        candidates=sql.Placeholder("candidates"),
    )
