-- Row-level security and grants. Visibility is decided here, never in Python.
-- A row of record, segment or ingest_error is visible when its acl overlaps
-- mmsearch.current_principals() (020_functions.sql: a person's principals come from
-- mmsearch.person, only the app's service login passes its own per transaction).
--
-- The policies hold that call as the variable caller_principals (mmsearch.db.schema):
-- on one server `(SELECT mmsearch.current_principals())`, an InitPlan evaluated once per
-- query; on a Citus coordinator the plain call, since Citus refuses subqueries in the
-- policies of distributed tables, and the shards evaluate it per row (cheap by design).

ALTER TABLE mmsearch.record ENABLE ROW LEVEL SECURITY;
ALTER TABLE mmsearch.record FORCE ROW LEVEL SECURITY;
ALTER TABLE mmsearch.segment ENABLE ROW LEVEL SECURITY;
ALTER TABLE mmsearch.segment FORCE ROW LEVEL SECURITY;
ALTER TABLE mmsearch.ingest_error ENABLE ROW LEVEL SECURITY;
ALTER TABLE mmsearch.ingest_error FORCE ROW LEVEL SECURITY;
ALTER TABLE mmsearch.person ENABLE ROW LEVEL SECURITY;  -- not forced: the owner edits it
ALTER TABLE mmsearch.person NO FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS visible_to_principals ON mmsearch.record;
CREATE POLICY visible_to_principals ON mmsearch.record FOR SELECT
    USING (acl && :caller_principals);
DROP POLICY IF EXISTS ingest_writes ON mmsearch.record;
CREATE POLICY ingest_writes ON mmsearch.record FOR ALL TO :"role_ingest"
    USING (true) WITH CHECK (true);

DROP POLICY IF EXISTS visible_to_principals ON mmsearch.segment;
CREATE POLICY visible_to_principals ON mmsearch.segment FOR SELECT
    USING (acl && :caller_principals);
DROP POLICY IF EXISTS ingest_writes ON mmsearch.segment;
CREATE POLICY ingest_writes ON mmsearch.segment FOR ALL TO :"role_ingest"
    USING (true) WITH CHECK (true);

-- A failed file's uri and reason are as private as the file: the acl it would have had.
DROP POLICY IF EXISTS visible_to_principals ON mmsearch.ingest_error;
CREATE POLICY visible_to_principals ON mmsearch.ingest_error FOR SELECT
    USING (acl && :caller_principals);
DROP POLICY IF EXISTS ingest_writes ON mmsearch.ingest_error;
CREATE POLICY ingest_writes ON mmsearch.ingest_error FOR ALL TO :"role_ingest"
    USING (true) WITH CHECK (true);

-- Each login's principals are read by session_user: its own row, never another's (on Citus
-- person_principals() alone ensures that: mmsearch.db.schema, own_person_row).
DROP POLICY IF EXISTS own_row ON mmsearch.person;
CREATE POLICY own_row ON mmsearch.person FOR SELECT USING (:own_person_row);

-- The search role: for SECURITY DEFINER search functions that keep full-text matches on
-- their GIN index. Under RLS, PostgreSQL evaluates a query's own conditions after the
-- policy's unless they are LEAKPROOF, so `content_tsv @@ q` cannot drive an index scan; and
-- marking pg_catalog.ts_match_vq LEAKPROOF (as an earlier version did) changes the catalog
-- for every user of the database and lets EXPLAIN ANALYZE count hidden matches. Instead a
-- function owned by this role (NOLOGIN, no member but the owner) reads every row, so the
-- policy adds nothing, and MUST itself apply exactly the policy's predicate,
--     acl && (SELECT mmsearch.current_principals())
-- with SET search_path pinned, no SQL text from its arguments (identifiers from the space
-- registry via %I, values via %L or USING: 047_search_core.sql), and EXECUTE granted
-- only to the app and analyst roles. Own such a function with
--     ALTER FUNCTION mmsearch.f(...) OWNER TO :"role_search";
DROP POLICY IF EXISTS search_definer_reads ON mmsearch.record;
CREATE POLICY search_definer_reads ON mmsearch.record FOR SELECT TO :"role_search"
    USING (true);
DROP POLICY IF EXISTS search_definer_reads ON mmsearch.segment;
CREATE POLICY search_definer_reads ON mmsearch.segment FOR SELECT TO :"role_search"
    USING (true);

REVOKE ALL ON ALL TABLES IN SCHEMA mmsearch FROM PUBLIC, :"role_bi";  -- BI: views, 040
GRANT USAGE ON SCHEMA mmsearch
    TO :"role_app", :"role_ingest", :"role_analyst", :"role_bi", :"role_views", :"role_search";
GRANT SELECT ON mmsearch.install
    TO :"role_app", :"role_ingest", :"role_analyst", :"role_views", :"role_search";
-- Only person_principals() reads mmsearch.person: it runs as the views role (SECURITY
-- DEFINER, a fixed body, search_path pinned), whose policy shows it the caller's row alone.
GRANT SELECT ON mmsearch.person TO :"role_views";
ALTER FUNCTION mmsearch.person_principals() OWNER TO :"role_views";
ALTER FUNCTION mmsearch.current_principals() OWNER TO :"role_views";
-- A client connecting with the service login checks the schema revision.
GRANT SELECT ON public.mmsearch_alembic_version
    TO :"role_app", :"role_ingest", :"role_analyst", :"role_bi";

GRANT SELECT ON mmsearch.collection, mmsearch.space, mmsearch.record, mmsearch.segment,
                mmsearch.ingest_error
    TO :"role_app", :"role_analyst";
GRANT SELECT, INSERT, UPDATE, DELETE ON mmsearch.collection, mmsearch.record, mmsearch.segment,
                                        mmsearch.ingest_error, mmsearch.ingest_lock
    TO :"role_ingest";
GRANT SELECT ON mmsearch.space TO :"role_ingest";
GRANT SELECT ON mmsearch.collection, mmsearch.space, mmsearch.record, mmsearch.segment
    TO :"role_search";
-- A backfill writes vectors (UPDATE segment, above) and what it had to skip.
GRANT SELECT, INSERT, DELETE ON mmsearch.backfill_skip TO :"role_ingest";

-- The metadata views' owner: the columns they read, and not one more (no content, no
-- vectors). BI reads those views and holds no grant on any table.
GRANT SELECT ON mmsearch.collection, mmsearch.space TO :"role_views";
GRANT SELECT (id, collection_id, uri, sha256, media_type, mime, title, bytes, duration_s, width,
              height, metadata, tags, acl, created_at, ingested_at)
    ON mmsearch.record TO :"role_views";
GRANT SELECT (id, record_id, collection_id, kind, acl) ON mmsearch.segment TO :"role_views";
GRANT SELECT (id, collection_id, acl) ON mmsearch.ingest_error TO :"role_views";
