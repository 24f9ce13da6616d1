-- Search functions for analysts, and the one the Python API calls.
--
-- `mmsearch.search(...)` takes everything `Client.search` takes and returns the same hits
-- (the Python API calls its core, search_request, with the same jsonb request that
-- `mmsearch.search_args(...)` builds); `mmsearch.search_statement(mmsearch.search_args(...))`
-- shows the SQL it runs.
-- keyword_search, more_like_this and hybrid_search are shortcuts of it with their earlier
-- signatures and result columns. The search itself lives in 047_search_core.sql.
--
-- These are SECURITY INVOKER: the caller's principals (mmsearch.current_principals())
-- decide what comes back, as for a plain SELECT under row-level security; the core they
-- call applies that same predicate itself (see 047).
-- CREATE OR REPLACE cannot change result columns: a change to them needs a DROP FUNCTION.

-- Built on the core now (and no longer a building block): use
-- mmsearch.search(vectors => ..., segments => true) instead.
DROP FUNCTION IF EXISTS mmsearch.vector_leg(vector, text, text, integer, bigint);
DROP FUNCTION IF EXISTS mmsearch.vector_leg(vector, text, text, integer, bigint, double precision);
-- `fusion`, then `sounds_like`, joined their arguments
DROP FUNCTION IF EXISTS mmsearch.search(text, jsonb, integer, text[], text[], text[], text[], jsonb,
    double precision, double precision, timestamptz, timestamptz, jsonb, jsonb, integer, boolean,
    bigint, text[], integer, text);
DROP FUNCTION IF EXISTS mmsearch.search_args(text, jsonb, integer, text[], text[], text[], text[],
    jsonb, double precision, double precision, timestamptz, timestamptz, jsonb, jsonb, integer,
    boolean, bigint, text[], integer, text);
DROP FUNCTION IF EXISTS mmsearch.search(text, jsonb, integer, text[], text[], text[], text[], jsonb,
    double precision, double precision, timestamptz, timestamptz, jsonb, jsonb, integer, boolean,
    bigint, text[], integer, text, text);
DROP FUNCTION IF EXISTS mmsearch.search_args(text, jsonb, integer, text[], text[], text[], text[],
    jsonb, double precision, double precision, timestamptz, timestamptz, jsonb, jsonb, integer,
    boolean, bigint, text[], integer, text, text);

-- The request of mmsearch.search(...) as the jsonb that the core takes (and
-- mmsearch.search_statement shows the SQL of).
CREATE OR REPLACE FUNCTION mmsearch.search_args(
    query text DEFAULT NULL, vectors jsonb DEFAULT NULL, k integer DEFAULT 10,
    collections text[] DEFAULT NULL, media_types text[] DEFAULT NULL, tags text[] DEFAULT NULL,
    tags_all text[] DEFAULT NULL, metadata jsonb DEFAULT NULL,
    start_s double precision DEFAULT NULL, end_s double precision DEFAULT NULL,
    ingested_after timestamptz DEFAULT NULL, ingested_before timestamptz DEFAULT NULL,
    filter jsonb DEFAULT NULL, weights jsonb DEFAULT NULL, rrf_k integer DEFAULT 60,
    segments boolean DEFAULT false, like_segment bigint DEFAULT NULL, spaces text[] DEFAULT NULL,
    ef_search integer DEFAULT NULL, vector_path text DEFAULT 'auto', fusion text DEFAULT NULL,
    sounds_like text DEFAULT NULL
) RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog
AS $fn$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'query', query, 'vectors', vectors, 'k', k, 'collections', collections,
        'media_types', media_types, 'tags', tags, 'tags_all', tags_all, 'metadata', metadata,
        'start_s', start_s, 'end_s', end_s, 'ingested_after', ingested_after,
        'ingested_before', ingested_before, 'filter', filter, 'weights', weights,
        'rrf_k', rrf_k, 'segments', segments, 'like_segment', like_segment, 'spaces', spaces,
        'ef_search', ef_search, 'vector_path', vector_path, 'fusion', fusion,
        'sounds_like', sounds_like))
$fn$;
COMMENT ON FUNCTION mmsearch.search_args(text, jsonb, integer, text[], text[], text[], text[],
                                         jsonb, double precision, double precision,
                                         timestamptz, timestamptz, jsonb, jsonb, integer,
                                         boolean, bigint, text[], integer, text, text,
                                         text) IS
    'The request of mmsearch.search(...) with the same arguments, as the jsonb its core '
    '(mmsearch.search_request) takes and the Python API sends; hand it to '
    'mmsearch.search_statement to see the SQL it runs.';

CREATE OR REPLACE FUNCTION mmsearch.search(
    query text DEFAULT NULL, vectors jsonb DEFAULT NULL, k integer DEFAULT 10,
    collections text[] DEFAULT NULL, media_types text[] DEFAULT NULL, tags text[] DEFAULT NULL,
    tags_all text[] DEFAULT NULL, metadata jsonb DEFAULT NULL,
    start_s double precision DEFAULT NULL, end_s double precision DEFAULT NULL,
    ingested_after timestamptz DEFAULT NULL, ingested_before timestamptz DEFAULT NULL,
    filter jsonb DEFAULT NULL, weights jsonb DEFAULT NULL, rrf_k integer DEFAULT 60,
    segments boolean DEFAULT false, like_segment bigint DEFAULT NULL, spaces text[] DEFAULT NULL,
    ef_search integer DEFAULT NULL, vector_path text DEFAULT 'auto', fusion text DEFAULT NULL,
    sounds_like text DEFAULT NULL
) RETURNS SETOF mmsearch.search_hit
LANGUAGE sql STABLE
SET search_path = pg_catalog, public
AS $fn$
    SELECT * FROM mmsearch.search_request(mmsearch.search_args(
        query, vectors, k, collections, media_types, tags, tags_all, metadata, start_s, end_s,
        ingested_after, ingested_before, filter, weights, rrf_k, segments, like_segment, spaces,
        ef_search, vector_path, fusion, sounds_like))
$fn$;
COMMENT ON FUNCTION mmsearch.search(text, jsonb, integer, text[], text[], text[], text[], jsonb,
                                    double precision, double precision, timestamptz,
                                    timestamptz, jsonb, jsonb, integer, boolean, bigint, text[],
                                    integer, text, text, text) IS
    'Search, as the Python API does (it calls this function): a keyword leg for `query` (any '
    'of its words; websearch syntax with quotes, "or" or -word) and a sounds_like leg (its '
    'plain words by their Double Metaphone codes: in transcripts with sounds_like => '
    '''speech'' (default), in every segment''s text with ''all'', none with ''off''), one '
    'vector leg per entry of '
    '`vectors` ({"space": vector}), or the stored vectors of `like_segment` (its record left '
    'out), fused by `fusion`: relative (default: the sum of weight * each leg''s score on '
    'a 0..1 scale, BM25 for keywords) or rrf (reciprocal rank fusion with rrf_k); filters: collections, '
    'media_types, tags (any), tags_all, metadata (containment), start_s/end_s (segments '
    'overlapping), ingested_after/_before, filter (a JSON filter tree, see '
    'mmsearch.filter_sql). One hit per record (its best segment) unless segments => true; '
    'the k best, with per-leg ranks and scores. Only rows visible to the caller.';

-- The stored vector of one segment (dynamic: the column depends on the space).
CREATE OR REPLACE FUNCTION mmsearch.segment_vector(segment_id bigint, space text DEFAULT 'text')
RETURNS vector
LANGUAGE plpgsql STABLE SECURITY INVOKER
SET search_path = pg_catalog, public
AS $fn$
DECLARE
    reg        mmsearch.space;
    v          vector;
    found_rows bigint;
BEGIN
    reg := mmsearch.space_named(segment_vector.space);
    IF segment_vector.segment_id IS NULL THEN
        RETURN NULL;  -- e.g. a subquery that found no segment: no rows downstream, no error
    END IF;
    EXECUTE format('SELECT s.%I::vector FROM mmsearch.segment AS s WHERE s.id = $1',
                   reg.column_name)
        INTO v USING segment_vector.segment_id;
    GET DIAGNOSTICS found_rows = ROW_COUNT;  -- EXECUTE does not set FOUND
    -- One message for "absent" and "hidden by RLS", so the error reveals nothing.
    IF found_rows = 0 THEN
        RAISE EXCEPTION 'segment % not found', segment_vector.segment_id
            USING ERRCODE = 'P0002';
    END IF;
    RETURN v;
END
$fn$;
COMMENT ON FUNCTION mmsearch.segment_vector(bigint, text) IS
    'The vector of a segment in a named space (NULL when the segment has none there, e.g. an '
    'image segment in a text-only space, or when segment_id is NULL). Raises "segment N not found" when it does not exist '
    'or the caller may not see it. Handy as a query vector: '
    'mmsearch.hybrid_search(''q'', mmsearch.segment_vector(42)).';

CREATE OR REPLACE FUNCTION mmsearch.keyword_search(
    query text, collection text DEFAULT NULL, k integer DEFAULT 10
) RETURNS TABLE (
    segment_id bigint, record_id bigint, uri text, title text, media_type text, kind text,
    start_s double precision, end_s double precision, score double precision, snippet text
)
LANGUAGE sql STABLE SECURITY INVOKER
SET search_path = pg_catalog, public
AS $fn$
    SELECT h.segment_id, h.record_id, h.uri, h.title, h.media_type, h.kind, h.start_s, h.end_s,
           h.score, h.snippet
    FROM mmsearch.search(query => keyword_search.query, k => keyword_search.k,
                         collections => CASE WHEN keyword_search.collection IS NOT NULL
                                        THEN ARRAY[keyword_search.collection] END) AS h
    ORDER BY h.score DESC, h.segment_id
$fn$;
COMMENT ON FUNCTION mmsearch.keyword_search(text, text, integer) IS
    'Full-text search over segment content: any of the words (websearch syntax when the query '
    'has "quoted phrase", or, -not), optionally in one collection; mmsearch.search with only '
    'the keyword leg, as `mmsearch search --mode keyword`. One row per record (its best '
    'segment), best first; score is the segment''s BM25 on a 0..1 scale (the share of the '
    'query''s IDF it holds; term statistics over the rows the caller can see); snippet marks '
    'matched words with «». Only rows visible to the caller.';

CREATE OR REPLACE FUNCTION mmsearch.more_like_this(
    segment_id bigint, space text DEFAULT 'text', k integer DEFAULT 10,
    collection text DEFAULT NULL
) RETURNS TABLE (
    segment_id bigint, record_id bigint, uri text, title text, media_type text, kind text,
    start_s double precision, end_s double precision, score double precision, snippet text
)
LANGUAGE sql STABLE SECURITY INVOKER
SET search_path = pg_catalog, public
AS $fn$
    SELECT h.segment_id, h.record_id, h.uri, h.title, h.media_type, h.kind, h.start_s, h.end_s,
           (h.leg_scores ->> more_like_this.space)::double precision, h.snippet
    FROM mmsearch.search(like_segment => more_like_this.segment_id,
                         spaces => ARRAY[more_like_this.space], k => more_like_this.k,
                         collections => CASE WHEN more_like_this.collection IS NOT NULL
                                        THEN ARRAY[more_like_this.collection] END) AS h
    ORDER BY (h.ranks ->> more_like_this.space)::integer
$fn$;
COMMENT ON FUNCTION mmsearch.more_like_this(bigint, text, integer, text) IS
    'Records nearest to a segment in a named space (default text), excluding the segment''s own '
    'record; one row per record (its nearest segment), best first; score is the similarity '
    '(cosine: 1 - distance). mmsearch.search(like_segment => ..., spaces => ...) with one '
    'space. Raises for an unknown space or a segment the caller cannot see; no rows when the '
    'segment has no vector in that space.';

CREATE OR REPLACE FUNCTION mmsearch.hybrid_search(
    query text, query_vector vector, space text DEFAULT 'text', collection text DEFAULT NULL,
    k integer DEFAULT 10, rrf_k integer DEFAULT 60
) RETURNS TABLE (
    segment_id bigint, record_id bigint, uri text, title text, media_type text, kind text,
    start_s double precision, end_s double precision, score double precision,
    vector_rank bigint, keyword_rank bigint, vector_score double precision,
    keyword_score double precision, snippet text
)
LANGUAGE sql STABLE SECURITY INVOKER
SET search_path = pg_catalog, public
AS $fn$
    SELECT h.segment_id, h.record_id, h.uri, h.title, h.media_type, h.kind, h.start_s, h.end_s,
           h.score, (h.ranks ->> hybrid_search.space)::bigint, (h.ranks ->> 'keyword')::bigint,
           (h.leg_scores ->> hybrid_search.space)::double precision,
           (h.leg_scores ->> 'keyword')::double precision, h.snippet
    FROM mmsearch.search(
        query => hybrid_search.query,
        vectors => jsonb_build_object(hybrid_search.space, hybrid_search.query_vector::text),
        collections => CASE WHEN hybrid_search.collection IS NOT NULL
                                        THEN ARRAY[hybrid_search.collection] END,
        k => hybrid_search.k, rrf_k => hybrid_search.rrf_k, fusion => 'rrf') AS h
    ORDER BY h.score DESC, h.segment_id
$fn$;
COMMENT ON FUNCTION mmsearch.hybrid_search(text, vector, text, text, integer, integer) IS
    'Hybrid search: reciprocal rank fusion (score = sum of confidence / (rrf_k + rank), where a '
    'vector hit''s confidence is how far its similarity clears the space''s min_similarity '
    'option, scaled to (0, 1], and a keyword hit''s its BM25 score on a 0..1 scale) '
    'of the vector leg in `space` (query_vector must come from that space''s model; NULL skips '
    'the leg) and the keyword leg (any of the words; websearch syntax when the query has quotes, '
    '"or" or -word). mmsearch.search with one vector and a query. One row per record (its best '
    'segment), best first, with the rank and score of that segment in each leg (NULL: not '
    'found by that leg). Only rows visible to the caller.';

-- The core runs as the search role (030_security.sql); nothing else of it needs a privileged owner.
ALTER FUNCTION mmsearch.search_plan(jsonb) OWNER TO :"role_search";
ALTER FUNCTION mmsearch.search_request(jsonb) OWNER TO :"role_search";

-- Callers that may search: the app and analysts (and the core's owner). BI sees metadata
-- views only.
DO $grants$
DECLARE
    fn regprocedure;
BEGIN
    FOR fn IN SELECT p.oid::regprocedure FROM pg_catalog.pg_proc AS p
              WHERE p.pronamespace = 'mmsearch'::regnamespace
                AND p.proname IN ('space_named', 'space_rules', 'search_limits', 'keyword_query',
                                  'websearch_syntax',
                                  'snippet', 'sounding_words', 'search_checked',
                                  'search_check_integer', 'search_vector_leg',
                                  'search_vector_legs', 'search_passing', 'search_plan',
                                  'search_source_sql',
                                  'search_vector_leg_sql', 'search_text_leg_sql',
                                  'search_moment_sql',
                                  'search_fusion_sql', 'search_compose', 'search_request',
                                  'search_settings', 'search_statement',
                                  'search_args', 'search', 'segment_vector',
                                  'keyword_search', 'more_like_this', 'hybrid_search')
    LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', fn);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I, %I, %I', fn,
                       :'role_app', :'role_analyst', :'role_search');
    END LOOP;
END
$grants$;
