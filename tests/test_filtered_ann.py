"""Filtered ANN keeps its promise: k results and recall@10 >= 0.95 against exact search.

20k segments (5,000 records x 4) of clustered 384-d unit vectors in a registered space,
1% of records tagged `{"cat": "rare"}`, 1% readable by `group:few`, 10% with `{"s10": true}`.
Every search goes through the real builder and `mmsearch.query.search.run` as the app role
with the caller's principals (row-level security applies), exactly as `Client.search` runs
it; "exact" is the same request with its vector leg forced to rank every matching row.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, replace

import numpy as np
import pytest
from psycopg import sql

from bench.synthetic import build_index, bulk_load, clustered
from mmsearch.db.engine import Database
from mmsearch.query.builder import SearchRequest, VectorLeg, build
from mmsearch.query.expression import parse
from mmsearch.query.filters import Filters
from mmsearch.query.search import run
from mmsearch.spaces import Space, register_space

RECORDS, PER_RECORD, DIM, QUERIES = 5000, 4, 384, 20
EVERYONE = ["group:all"]
#: what `search()` asks of a leg for k=10, one hit per record
CANDIDATES = 120
DEFAULT = SearchRequest.exact_below


@dataclass(frozen=True)
class Corpus:
    space: Space
    queries: np.ndarray


@pytest.fixture(scope="module")
def corpus(db: Database) -> Corpus:
    """COPY the rows with the HNSW index dropped, then build it as `register_space` made it
    (default m and ef_construction): ~5 s on 2 cores, where inserting the same 20k rows
    into the live index took 22 s."""
    rng = np.random.default_rng(20)
    centres = rng.standard_normal((100, DIM), np.float32)
    vectors, _ = clustered(rng, centres, RECORDS * PER_RECORD)
    rare = set(rng.choice(RECORDS, RECORDS // 100, replace=False).tolist())
    few = set(rng.choice(RECORDS, RECORDS // 100, replace=False).tolist())
    s10 = set(rng.choice(RECORDS, RECORDS // 10, replace=False).tolist())
    records = [
        (
            {"cat": "rare" if i in rare else "common", "s10": i in s10},
            EVERYONE + (["group:few"] if i in few else []),
        )
        for i in range(RECORDS)
    ]
    rows = [(j // PER_RECORD, None, vector) for j, vector in enumerate(vectors)]
    with db.transaction() as conn:
        space = register_space(
            conn,
            "ann",
            modalities=["text"],
            model_id="synthetic",
            revision="1",
            dim=DIM,
            distance="cosine",
        )
        bulk_load(conn, space, "ann", records, rows)
        build_index(conn, space, "256MB")
    with db.transaction() as conn:
        conn.execute("ANALYZE mmsearch.record, mmsearch.segment")
    return Corpus(space, clustered(rng, centres, QUERIES)[0])


def request(corpus: Corpus, i: int, filters: Filters, exact_below: int) -> SearchRequest:
    leg = VectorLeg(corpus.space, corpus.queries[i])
    return SearchRequest((leg,), filters, k=10, candidates=CANDIDATES, exact_below=exact_below)


def searched(db: Database, principals: list[str], search: SearchRequest) -> list[int]:
    with db.reader(principals) as conn:
        return [row["record_id"] for row in run(conn, search)]


def exact(db: Database, principals: list[str], search: SearchRequest) -> list[int]:
    exhaustive = replace(search, legs=tuple(replace(leg, exact=True) for leg in search.legs))
    statement, params = build(exhaustive)
    with db.reader(principals) as conn:
        return [row[0] for row in conn.execute(statement, params).fetchall()]


def recall_at_10(
    db: Database,
    corpus: Corpus,
    principals: list[str],
    filters: Filters,
    exact_below: int = DEFAULT,
) -> float:
    """Mean recall@10 of records over the queries; every search must return 10 records."""
    recalls = []
    for i in range(QUERIES):
        search = request(corpus, i, filters, exact_below)
        found, truth = searched(db, principals, search), exact(db, principals, search)
        assert len(found) == len(truth) == 10
        recalls.append(len(set(found) & set(truth)) / 10)
    return statistics.fmean(recalls)


def plan(db: Database, principals: list[str], search: SearchRequest) -> str:
    """EXPLAIN ANALYZE of the statement, under the settings `run` gives its transaction."""
    statement, params = build(search)
    with db.reader(principals) as conn:
        run(conn, search)
        rows = conn.execute(sql.SQL("EXPLAIN (ANALYZE, COSTS OFF) ") + statement, params)
        return "\n".join(row[0] for row in rows)


def hnsw_scan(text: str, corpus: Corpus) -> str:
    return next(
        line for line in text.splitlines() if f"segment_{corpus.space.column_name}_hnsw on" in line
    )


def test_unfiltered_search_walks_the_hnsw_index(db: Database, corpus: Corpus) -> None:
    scan = hnsw_scan(plan(db, EVERYONE, request(corpus, 0, Filters(), DEFAULT)), corpus)
    assert "Index Scan using" in scan and "never executed" not in scan
    assert recall_at_10(db, corpus, EVERYONE, Filters()) >= 0.95


@pytest.mark.parametrize(
    ("principals", "expression"),
    [(EVERYONE, 'meta.cat = "rare"'), (["group:few"], None), (EVERYONE, "meta.s10 = true")],
    ids=["filter-1%", "permission-1%", "filter-10%"],
)
def test_filtered_search_keeps_k_and_recall(
    db: Database, corpus: Corpus, principals: list[str], expression: str | None
) -> None:
    filters = Filters(where=parse(expression)) if expression else Filters()
    assert recall_at_10(db, corpus, principals, filters) >= 0.95


def test_selective_filter_ranks_exactly(db: Database, corpus: Corpus) -> None:
    """200 matching rows: the statement ranks them exactly and never walks the index."""
    filters = Filters(where=parse('meta.cat = "rare"'))
    scan = hnsw_scan(plan(db, EVERYONE, request(corpus, 0, filters, DEFAULT)), corpus)
    assert "never executed" in scan


def test_index_walk_alone_keeps_recall_at_1_percent(db: Database, corpus: Corpus) -> None:
    """With the exact branch switched off (as for a 1% filter on a much larger table),
    pgvector's iterative scan still fills the candidate list from the index."""
    filters = Filters(where=parse('meta.cat = "rare"'))
    scan = hnsw_scan(plan(db, EVERYONE, request(corpus, 0, filters, 0)), corpus)
    assert "never executed" not in scan
    assert recall_at_10(db, corpus, EVERYONE, filters, 0) >= 0.95
