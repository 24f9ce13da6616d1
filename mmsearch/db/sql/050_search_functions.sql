-- Search functions for analysts: keyword search, "more like this segment", hybrid search.
--
-- They mirror mmsearch/query/builder.py so SQL and the API agree: the ANN leg orders a
-- space's column by its distance operator (cosine <=>, ip <#>, l2 <->), the keyword leg
-- ranks keyword_query(…) matches by ts_rank_cd, fusion is RRF scaled by each hit's
-- confidence (sum of confidence / (rrf_k + rank), rrf_k = 60) and the best segment of each
-- record represents it.
--
-- All are SECURITY INVOKER: they read the tables as the caller, so row-level security and
-- the caller's mmsearch.principals decide what they return, exactly as for a plain SELECT.
-- The public three are LANGUAGE sql (a plpgsql function cannot take an argument named like
-- one of its result columns, e.g. more_like_this(segment_id) returning segment_id); the
-- dynamic parts (the space's column and operator) live in two small plpgsql helpers.
-- CREATE OR REPLACE cannot change result columns: a change to them needs a DROP FUNCTION.

-- The keyword leg's query. Typed without operators, a query is any of its words
-- (plainto_tsquery's & turned into |), ranked by ts_rank_cd: people describe what they want
-- in their own words, and requiring every word finds nothing for most descriptions (the
-- evaluation's paraphrase queries matched 1 in 60 spoken prompts that way). Quotes, "or" or
-- a -word select websearch syntax, and with it the user's own logic.
CREATE OR REPLACE FUNCTION mmsearch.keyword_query(query text) RETURNS tsquery
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog
AS $fn$
    SELECT CASE
        WHEN query ~* '"|(^|\s)-\w|\sor\s' THEN websearch_to_tsquery('english'::regconfig, query)
        ELSE replace(plainto_tsquery('english'::regconfig, query)::text, ' & ', ' | ')::tsquery
    END
$fn$;

-- How much of the query a keyword match holds: the share of the query's distinct lexemes in
-- the segment. It scales the keyword leg's weight in the fusion, so a segment that shares one
-- word of six counts for a sixth of one that has them all.
CREATE OR REPLACE FUNCTION mmsearch.keyword_coverage(content tsvector, query text)
RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog
AS $fn$
    SELECT count(*) FILTER (WHERE l = ANY (tsvector_to_array(content)))::double precision
           / greatest(count(*), 1)
    FROM unnest(tsvector_to_array(to_tsvector('english'::regconfig, query))) AS l
$fn$;

-- The registry row of a space, or a clear error naming the spaces there are.
CREATE OR REPLACE FUNCTION mmsearch.space_named(space text) RETURNS mmsearch.space
LANGUAGE plpgsql STABLE SECURITY INVOKER
SET search_path = pg_catalog, public
AS $fn$
DECLARE
    reg mmsearch.space;
BEGIN
    SELECT * INTO reg FROM mmsearch.space AS sp WHERE sp.name = space_named.space;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown space "%" (registered: %)', space_named.space,
            coalesce((SELECT string_agg(sp.name, ', ' ORDER BY sp.name) FROM mmsearch.space AS sp),
                     'none')
            USING ERRCODE = '22023', HINT = 'SELECT name FROM mmsearch.space_registry;';
    END IF;
    RETURN reg;
END
$fn$;
COMMENT ON FUNCTION mmsearch.space_named(text) IS
    'The registry row of the named space; an unknown name is an error listing the known ones.';

-- The query vector's leg: nearest segments in one space, ranked 1..n.
DROP FUNCTION IF EXISTS mmsearch.vector_leg(vector, text, text, integer, bigint);  -- pre-floor
CREATE OR REPLACE FUNCTION mmsearch.vector_leg(
    query_vector vector, space text, collection text DEFAULT NULL,
    candidates integer DEFAULT 100, exclude_record bigint DEFAULT NULL,
    min_similarity double precision DEFAULT NULL
) RETURNS TABLE (segment_id bigint, rank bigint, score double precision)
LANGUAGE plpgsql STABLE SECURITY INVOKER
SET search_path = pg_catalog, public
-- Iterative index scans keep walking the HNSW graph until the LIMIT is met, so a collection
-- filter, the excluded record or RLS (a caller who sees few rows) still fill the list.
-- A SET clause also confines the set_config below to this call (restored on exit).
SET hnsw.iterative_scan = relaxed_order
SET hnsw.ef_search = 40
AS $fn$
DECLARE
    reg        mmsearch.space;
    vtype      text;
    op         text;
    similarity text;
    stmt       text;
BEGIN
    reg := mmsearch.space_named(vector_leg.space);
    IF query_vector IS NULL THEN
        RETURN;  -- nothing to compare with (e.g. a segment without a vector in this space)
    END IF;
    IF vector_dims(query_vector) <> reg.dim THEN
        RAISE EXCEPTION 'query vector has % dimensions; space "%" holds % (model %)',
            vector_dims(query_vector), reg.name, reg.dim, reg.model_id
            USING ERRCODE = '22023';
    END IF;
    IF candidates IS NULL OR candidates < 1 THEN
        RAISE EXCEPTION 'candidates must be at least 1, not %', candidates USING ERRCODE = '22023';
    END IF;
    -- Same rule as the API: ef_search follows the candidate count (40..1000).
    PERFORM set_config('hnsw.ef_search', least(greatest(candidates, 40), 1000)::text, true);

    vtype := CASE WHEN reg.dim > 2000 THEN 'halfvec' ELSE 'vector' END;  -- as register_space
    op := CASE reg.distance WHEN 'cosine' THEN '<=>' WHEN 'ip' THEN '<#>' ELSE '<->' END;
    similarity := CASE reg.distance WHEN 'cosine' THEN '1 - n.d' ELSE '-(n.d)' END;
    -- Identifiers and operators come from the registry row, values travel as $n.
    stmt := format(
        'SELECT n.id, row_number() OVER (ORDER BY n.d, n.id), %s FROM ('
        'SELECT s.id, s.%I %s $1::%s(%s) AS d FROM mmsearch.segment AS s'
        ' WHERE s.%I IS NOT NULL%s%s ORDER BY d LIMIT $4) AS n WHERE %s >= $5',
        similarity, reg.column_name, op, vtype, reg.dim, reg.column_name,
        CASE WHEN collection IS NOT NULL THEN ' AND s.collection_id IN'
             ' (SELECT c.id FROM mmsearch.collection AS c WHERE c.name = $2)' ELSE '' END,
        CASE WHEN exclude_record IS NOT NULL THEN ' AND s.record_id <> $3' ELSE '' END,
        similarity);
    -- relaxed_order may return the LIMIT slightly out of order; row_number re-sorts it.
    RETURN QUERY EXECUTE stmt USING query_vector, collection, exclude_record, candidates,
        coalesce(min_similarity, '-infinity');
END
$fn$;
COMMENT ON FUNCTION mmsearch.vector_leg(vector, text, text, integer, bigint, double precision) IS
    'The vector leg of a search: the `candidates` segments nearest to query_vector in `space` '
    '(optionally one collection, excluding one record), ranked from 1, with their similarity '
    '(cosine: 1 - distance; ip, l2: minus the distance), none below min_similarity. '
    'Rows the caller may not see are '
    'skipped (RLS). Building block of more_like_this and hybrid_search.';

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
    WITH q AS (
        SELECT mmsearch.keyword_query(keyword_search.query) AS tsq
    ), matches AS (
        SELECT s.id, s.record_id, ts_rank_cd(s.content_tsv, q.tsq)::double precision AS score
        FROM mmsearch.segment AS s, q
        WHERE s.content_tsv @@ q.tsq
          AND (keyword_search.collection IS NULL
               OR s.collection_id IN (SELECT c.id FROM mmsearch.collection AS c
                                      WHERE c.name = keyword_search.collection))
    ), best AS (
        -- One row per record: its best-ranked segment.
        SELECT DISTINCT ON (m.record_id) m.id, m.record_id, m.score
        FROM matches AS m
        ORDER BY m.record_id, m.score DESC, m.id
    )
    SELECT b.id, b.record_id, r.uri, r.title, r.media_type, s.kind, s.start_s, s.end_s,
           b.score,
           ts_headline('english'::regconfig, s.content, q.tsq,
                       'MaxFragments=2, MaxWords=25, MinWords=8, StartSel=«, StopSel=»')
    FROM best AS b
    JOIN mmsearch.segment AS s ON s.id = b.id
    JOIN mmsearch.record AS r ON r.id = b.record_id
    CROSS JOIN q
    ORDER BY b.score DESC, b.id
    LIMIT keyword_search.k
$fn$;
COMMENT ON FUNCTION mmsearch.keyword_search(text, text, integer) IS
    'Full-text search over segment content: any of the words, ranked by ts_rank_cd (websearch '
    'syntax when the query has "quoted phrase", or, -not), '
    'optionally in one collection. One row per record (its best segment), best first; score is '
    'ts_rank_cd; snippet marks matched words with «». Only rows visible to the caller (RLS).';

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
    WITH src AS MATERIALIZED (
        -- Raises for an unknown space or a segment the caller cannot see.
        SELECT mmsearch.segment_vector(more_like_this.segment_id, more_like_this.space) AS v,
               (SELECT s.record_id FROM mmsearch.segment AS s
                WHERE s.id = more_like_this.segment_id) AS record_id
    ), leg AS (
        -- As many candidates as the API fetches, so grouping to records still fills k.
        SELECT l.segment_id, l.rank, l.score
        FROM src,
             mmsearch.vector_leg(src.v, more_like_this.space, more_like_this.collection,
                                 greatest(4 * more_like_this.k, 40) * 3, src.record_id) AS l
    ), best AS (
        SELECT DISTINCT ON (s.record_id) l.segment_id, s.record_id, l.rank, l.score
        FROM leg AS l JOIN mmsearch.segment AS s ON s.id = l.segment_id
        ORDER BY s.record_id, l.rank
    )
    SELECT b.segment_id, b.record_id, r.uri, r.title, r.media_type, s.kind, s.start_s, s.end_s,
           b.score, coalesce(left(s.content, 240), s.metadata->>'caption')
    FROM best AS b
    JOIN mmsearch.segment AS s ON s.id = b.segment_id
    JOIN mmsearch.record AS r ON r.id = b.record_id
    ORDER BY b.rank
    LIMIT more_like_this.k
$fn$;
COMMENT ON FUNCTION mmsearch.more_like_this(bigint, text, integer, text) IS
    'Records nearest to a segment in a named space (default text), excluding the segment''s own '
    'record; one row per record (its nearest segment), best first; score is the similarity '
    '(cosine: 1 - distance). Raises for an unknown space or a segment the caller cannot see; '
    'no rows when the segment has no vector in that space.';

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
    WITH q AS (
        SELECT mmsearch.keyword_query(coalesce(hybrid_search.query, '')) AS tsq,
               greatest(4 * hybrid_search.k, 40) * 3 AS candidates  -- as the API
    ), floor AS (  -- the space's noise floor for typed queries, as the API
        SELECT (sp.options ->> 'min_similarity')::double precision AS f,
               sp.distance = 'cosine' AS bounded
        FROM mmsearch.space AS sp WHERE sp.name = hybrid_search.space
    ), vec AS (
        -- confidence: how far the similarity clears the floor, (floor, 1] onto (0, 1]
        SELECT l.segment_id AS id, l.rank, l.score,
               CASE WHEN fl.bounded AND fl.f IS NOT NULL
                    THEN (l.score - fl.f) / (1.0 - fl.f) ELSE 1.0 END AS confidence
        FROM q CROSS JOIN floor AS fl,
             mmsearch.vector_leg(hybrid_search.query_vector, hybrid_search.space,
                                 hybrid_search.collection, q.candidates, NULL, fl.f) AS l
    ), kw AS (
        SELECT m.id, row_number() OVER (ORDER BY m.score DESC, m.id) AS rank, m.score,
               mmsearch.keyword_coverage(m.tsv, hybrid_search.query) AS confidence
        FROM (
            SELECT s.id, s.content_tsv AS tsv,
                   ts_rank_cd(s.content_tsv, q.tsq)::double precision AS score
            FROM mmsearch.segment AS s, q
            WHERE s.content_tsv @@ q.tsq
              AND (hybrid_search.collection IS NULL
                   OR s.collection_id IN (SELECT c.id FROM mmsearch.collection AS c
                                          WHERE c.name = hybrid_search.collection))
            ORDER BY score DESC
            LIMIT (SELECT q.candidates FROM q)
        ) AS m
    ), fused AS (
        SELECT coalesce(v.id, w.id) AS id,
               coalesce(v.confidence / (hybrid_search.rrf_k + v.rank), 0)
                 + coalesce(w.confidence / (hybrid_search.rrf_k + w.rank), 0) AS score,
               v.rank AS vector_rank, w.rank AS keyword_rank,
               v.score AS vector_score, w.score AS keyword_score
        FROM vec AS v FULL JOIN kw AS w ON w.id = v.id
    ), best AS (
        SELECT DISTINCT ON (s.record_id) f.*, s.record_id
        FROM fused AS f JOIN mmsearch.segment AS s ON s.id = f.id
        ORDER BY s.record_id, f.score DESC, f.id
    )
    SELECT b.id, b.record_id, r.uri, r.title, r.media_type, s.kind, s.start_s, s.end_s,
           b.score, b.vector_rank, b.keyword_rank, b.vector_score, b.keyword_score,
           CASE WHEN b.keyword_rank IS NOT NULL
                THEN ts_headline('english'::regconfig, s.content, q.tsq,
                                 'MaxFragments=2, MaxWords=25, MinWords=8, StartSel=«, StopSel=»')
                ELSE coalesce(left(s.content, 240), s.metadata->>'caption') END
    FROM best AS b
    JOIN mmsearch.segment AS s ON s.id = b.id
    JOIN mmsearch.record AS r ON r.id = b.record_id
    CROSS JOIN q
    ORDER BY b.score DESC, b.id
    LIMIT hybrid_search.k
$fn$;
COMMENT ON FUNCTION mmsearch.hybrid_search(text, vector, text, text, integer, integer) IS
    'Hybrid search: reciprocal rank fusion (score = sum of confidence / (rrf_k + rank), where a '
    'vector hit''s confidence is how far its similarity clears the space''s min_similarity '
    'option, scaled to (0, 1], and a keyword hit''s the share of the query''s words it holds) '
    'of the vector leg in `space` (query_vector must come from that space''s model; NULL skips '
    'the leg) and the keyword leg (any of the words; websearch syntax when the query has quotes, '
    '"or" or -word). One row per record (its best segment), best first, with '
    'the rank and score of that segment in each leg (NULL: not found by that leg). '
    'Only rows visible to the caller (RLS).';

-- Callers that may search: the app and analysts. BI sees metadata views only.
REVOKE ALL ON FUNCTION mmsearch.space_named(text),
                       mmsearch.keyword_query(text),
                       mmsearch.keyword_coverage(tsvector, text),
                       mmsearch.vector_leg(vector, text, text, integer, bigint, double precision),
                       mmsearch.segment_vector(bigint, text),
                       mmsearch.keyword_search(text, text, integer),
                       mmsearch.more_like_this(bigint, text, integer, text),
                       mmsearch.hybrid_search(text, vector, text, text, integer, integer)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mmsearch.space_named(text),
                          mmsearch.keyword_query(text),
                          mmsearch.keyword_coverage(tsvector, text),
                          mmsearch.vector_leg(vector, text, text, integer, bigint, double precision),
                          mmsearch.segment_vector(bigint, text),
                          mmsearch.keyword_search(text, text, integer),
                          mmsearch.more_like_this(bigint, text, integer, text),
                          mmsearch.hybrid_search(text, vector, text, text, integer, integer)
    TO :"role_app", :"role_analyst";
