"""The systems under test, each as a `Search` (query number, knob) -> ids: mmsearch through
its Python API, the hand-written SQL floor, and the peers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from psycopg import sql

from bench.search.data import SPACE, Corpus, Dataset
from bench.search.measure import Search
from bench.search.peers import Peer, Query
from bench.search.scenarios import K, Scenario
from mmsearch.db.engine import Database
from mmsearch.query.request import SearchOptions
from mmsearch.query.search import SearchPlan, explain, run

#: pgvector `hnsw.ef_search` values swept; 0 stands for the exact plan (index off)
EF_SEARCH = (10, 20, 40, 80, 120, 200, 400)
EXACT = 0
FLOOR_EF = 40  # pgvector's default


def knob_label(knob: int | None) -> str:
    return "default" if knob is None else "exact" if knob == EXACT else f"ef_search={knob}"


def mmsearch_plan(
    data: Dataset, scenario: Scenario, i: int, ef: int | None, *, segments: bool, path: str
) -> SearchPlan:
    """What `Client.plan` makes of query i once encoded: the request the SQL search takes."""
    options = SearchOptions(
        **scenario.options, principals=scenario.principals, k=K, segments=segments,
        ef_search=ef, vector_path=path,
    )  # fmt: skip
    request = options.request()
    if scenario.legs != "keyword":
        request["vectors"] = {SPACE: data.queries[i].tolist()}
    if scenario.legs != "vector":
        request["query"] = data.words[i]
    return SearchPlan(request, tuple(scenario.principals))


def mmsearch(
    db: Database,
    corpus: Corpus,
    data: Dataset,
    scenario: Scenario,
    *,
    segments: bool = False,
    path: str = "auto",
) -> Search:
    """`run` of a planned request: records by default, segments to match the floor."""
    ids = corpus.segment_of if segments else corpus.record_of

    def search(i: int, ef: int | None) -> list[int]:
        hits = run(db, mmsearch_plan(data, scenario, i, ef, segments=segments, path=path))
        return [ids[hit.segment_id if segments else hit.record_id] for hit in hits]

    return search


def mmsearch_path(db: Database, data: Dataset, scenario: Scenario) -> str:
    """How mmsearch ranked query 0: its vector leg by HNSW or exactly; text by GIN or not."""
    planned = mmsearch_plan(data, scenario, 0, None, segments=False, path="auto")
    return describe(explain(db, planned, analyze=True).splitlines())


def describe(plan: list[str]) -> str:
    index_scan = [line for line in plan if "_hnsw on" in line]
    how = []
    if index_scan:
        how.append("exact" if all("never executed" in line for line in index_scan) else "hnsw")
    elif any("<=>" in line for line in plan):
        how.append("exact")
    if any("@@" in line for line in plan):
        how.append("gin" if any("segment_tsv_idx" in line for line in plan) else "tsv scan")
    return " + ".join(how)


def hand_written(
    db: Database, corpus: Corpus, data: Dataset, scenario: Scenario
) -> tuple[Callable[[int, int | None], list[int]], Callable[[int], str]]:
    """The floor: one plain query for the top 10 segments as the owner (no RLS, so the
    planner sees real statistics and may use every index). Returns the search (knob:
    ef_search, or EXACT for the plan with index scans off) and the path a knob takes."""
    assert scenario.floor is not None
    where, value = scenario.floor
    record = sql.SQL(" JOIN mmsearch.record r ON r.id = s.record_id" if "r." in where else "")
    if scenario.legs == "keyword":
        statement = sql.SQL(
            "SELECT s.id FROM mmsearch.segment s, websearch_to_tsquery('english', %(w)s) AS q"
            " WHERE s.content_tsv @@ q ORDER BY ts_rank_cd(s.content_tsv, q) DESC, s.id LIMIT 10"
        )
    else:
        statement = sql.SQL(
            "SELECT s.id FROM mmsearch.segment s{record} WHERE {where}"
            " ORDER BY s.{column} <=> %(q)s LIMIT 10"
        ).format(
            record=record, where=sql.SQL(where), column=sql.Identifier(corpus.space.column_name)
        )

    def execute(i: int, knob: int | None, explain_only: bool = False) -> list[Any]:
        with db.transaction() as conn:
            conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
            ef = FLOOR_EF if knob in (None, EXACT) else knob
            conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(ef),))
            if knob == EXACT:
                conn.execute("SET LOCAL enable_indexscan = off")
            query = sql.SQL("EXPLAIN ") + statement if explain_only else statement
            # unprepared: a cached plan would ignore `enable_indexscan` (exact or not)
            params = {"q": data.queries[i], "f": value, "w": data.words[i]}
            rows = conn.execute(query, params, prepare=False).fetchall()
            return [row[0] if explain_only else corpus.segment_of[row[0]] for row in rows]

    return execute, lambda knob: describe(execute(0, knob, explain_only=True)) or "exact"


def peer(peer: Peer, data: Dataset, scenario: Scenario) -> Search:
    legs = scenario.legs

    def search(i: int, knob: int | None) -> list[int]:
        query = Query(
            None if legs == "keyword" else data.queries[i],
            scenario.flag,
            scenario.tag,
            scenario.principal,
            None if legs == "vector" else data.words[i],
        )
        return peer.search(query, K, peer.default if knob is None else knob)

    return search
