"""Search speed and recall at scale: mmsearch against hand-written SQL and peer stores.

On N synthetic segments (unit vectors, 384-d or 512-d, around random cluster centres, 4
segments per record; record flags, tags and ACLs of known selectivity; content words) this
measures, on the same vectors and queries, side by side:

- mmsearch: `mmsearch.query.search.run` (what `Client.search` runs once the query is
  encoded: one call of the SQL search in one transaction, as the app role with the
  caller's principals), top 10 *records* (one hit per record), with its own choice of
  path (exact or HNSW) and `ef_search`; and the same call doing the same work as the
  hand-written query (one vector leg, top 10 *segments*, the same path and ef_search),
  whose p50 is reported as a ratio to the hand-written one;
- hand-written SQL: `ORDER BY v <=> q LIMIT 10` with the filter or ACL as a plain WHERE
  clause, as the owner (no RLS), relaxed iterative scans, `ef_search` swept, plus the same
  query ranked exactly (the index switched off); it cannot fuse a hybrid search;
- peers (`bench.search.peers`), in-process: LanceDB, Chroma and Milvus Lite.

Recall@10 is against exact numpy search over the same filtered set (`bench.search.truth`):
records ranked by their best segment for mmsearch, segments for everything else. Each
system's accuracy knob is swept; the tables show the cheapest setting reaching 0.95 (or the
best, marked †), and a PNG per scenario plots recall against QPS.

    python -m bench.search --quick          # 20k segments, 20 queries, every system (CI)
    python -m bench.search --n 1000000 --queries 100 --systems mmsearch,sql,lancedb \\
        --dsn "$DSN" --keep /work/scratch --maintenance-work-mem 4GB

With `--dsn` the data goes into a database on that server (`--keep DIR`: kept, named after
its size, and reused by the next run, as are the peers' stores under DIR); without it a
throwaway embedded server runs under a temporary directory. Prints the tables and writes
bench/out/search-<n>[-<dim>d].json.
"""
