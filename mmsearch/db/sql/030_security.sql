-- Row-level security and grants. Visibility is decided here, never in Python.

ALTER TABLE mmsearch.record ENABLE ROW LEVEL SECURITY;
ALTER TABLE mmsearch.record FORCE ROW LEVEL SECURITY;
ALTER TABLE mmsearch.segment ENABLE ROW LEVEL SECURITY;
ALTER TABLE mmsearch.segment FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS visible_to_principals ON mmsearch.record;
CREATE POLICY visible_to_principals ON mmsearch.record FOR SELECT
    USING (acl && (SELECT mmsearch.current_principals()));
DROP POLICY IF EXISTS ingest_writes ON mmsearch.record;
CREATE POLICY ingest_writes ON mmsearch.record FOR ALL TO mmsearch_ingest
    USING (true) WITH CHECK (true);

DROP POLICY IF EXISTS visible_to_principals ON mmsearch.segment;
CREATE POLICY visible_to_principals ON mmsearch.segment FOR SELECT
    USING (acl && (SELECT mmsearch.current_principals()));
DROP POLICY IF EXISTS ingest_writes ON mmsearch.segment;
CREATE POLICY ingest_writes ON mmsearch.segment FOR ALL TO mmsearch_ingest
    USING (true) WITH CHECK (true);

GRANT USAGE ON SCHEMA mmsearch TO mmsearch_app, mmsearch_ingest, mmsearch_analyst, mmsearch_bi;

GRANT SELECT ON mmsearch.collection, mmsearch.space, mmsearch.record, mmsearch.segment,
                mmsearch.ingest_error
    TO mmsearch_app, mmsearch_analyst;
GRANT SELECT, INSERT, UPDATE, DELETE ON mmsearch.collection, mmsearch.record, mmsearch.segment,
                                        mmsearch.ingest_error
    TO mmsearch_ingest;
GRANT SELECT ON mmsearch.space TO mmsearch_ingest;
-- A backfill writes vectors (UPDATE segment, above) and what it had to skip.
GRANT SELECT, INSERT, DELETE ON mmsearch.backfill_skip TO mmsearch_ingest;

-- BI: the columns its views read, and not one more (no content, no vectors).
GRANT SELECT ON mmsearch.collection, mmsearch.space, mmsearch.ingest_error TO mmsearch_bi;
GRANT SELECT (id, collection_id, uri, sha256, media_type, mime, title, bytes, duration_s, width,
              height, metadata, tags, acl, created_at, ingested_at)
    ON mmsearch.record TO mmsearch_bi;
GRANT SELECT (id, record_id, collection_id, kind, acl) ON mmsearch.segment TO mmsearch_bi;

-- Full-text matches under RLS. PostgreSQL evaluates a query's own conditions after the
-- policy's unless they are LEAKPROOF (cannot reveal a row through an error or side effect),
-- so `content_tsv @@ q` could not use the GIN index and every keyword search scanned all
-- visible segments. ts_match_vq (the @@ behind tsvector @@ tsquery) raises no error that
-- depends on the row: its errors come from the query itself. Marking it LEAKPROOF needs a
-- superuser (the embedded server's owner is one); elsewhere ask the DBA to run this
-- statement, or keyword legs keep working by scanning.
DO $leakproof$
BEGIN
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        ALTER FUNCTION pg_catalog.ts_match_vq(tsvector, tsquery) LEAKPROOF;
    END IF;
END
$leakproof$;
