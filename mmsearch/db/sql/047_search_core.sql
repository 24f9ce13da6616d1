-- The search: one implementation, which the Python API and analysts both call.
--
--   search_checked(request)   validates a request (jsonb) and fills in its defaults
--   search_plan(request)      resolves it: the caller's principals, the filter as SQL, one
--                             leg per query vector (or per vector of a "more like this"
--                             segment) and the keyword leg, and, from real counts, whether
--                             each vector leg ranks the passing rows exactly or walks HNSW
--   search_compose(plan)      the one SQL statement of a plan (values inlined as literals, so
--                             the text is what runs and what `--explain` prints)
--   search_request(request)   runs it, retrying with more candidates when grouping to
--                             records came up short; returns SETOF mmsearch.search_hit
--
-- search_plan and search_request are SECURITY DEFINER, owned by the database's search role
-- (:"role_search", 030_security.sql), so that the planner may use the GIN indexes on metadata, tags,
-- ACLs and full text and their statistics, which row-level security hides from the caller.
-- Each applies the caller's policy predicate `acl && mmsearch.current_principals()` itself,
-- in every statement, to segments and to records; identifiers come only from the space
-- registry and this file, values only as quoted literals. search_compose is plain text
-- work; its statement, run by the caller, returns the same rows under RLS.
--
-- The text legs (search_text_leg_sql: keyword, sounds_like, spelled_like), the fusion
-- (search_fusion_sql) and the moments (search_moment_sql) are each one function, so any can
-- be replaced without touching the rest.

-- A request with its defaults, or an error naming what is wrong (SQLSTATE 22023). A search
-- of one collection that sets neither fusion nor weights takes that collection's own
-- (`search_defaults`, chosen by `mmsearch eval --tune --apply`).
CREATE OR REPLACE FUNCTION mmsearch.search_checked(request jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog
AS $fn$
DECLARE
    limits  jsonb := mmsearch.search_limits();
    checked jsonb := jsonb_strip_nulls(coalesce(request, '{}'));
    unknown text;
    terms   integer;
BEGIN
    SELECT string_agg(key, ', ') INTO unknown FROM jsonb_object_keys(checked) AS key
    WHERE key NOT IN ('query', 'vectors', 'k', 'collections', 'media_types', 'tags', 'tags_all',
                      'metadata', 'start_s', 'end_s', 'ingested_after', 'ingested_before',
                      'filter', 'weights', 'rrf_k', 'segments', 'like_segment', 'spaces',
                      'ef_search', 'vector_path', 'fusion', 'sounds_like');
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'unknown search option(s): %', unknown USING ERRCODE = '22023';
    END IF;
    IF NOT checked ?| ARRAY['fusion', 'weights']
       AND jsonb_typeof(checked -> 'collections') = 'array'
       AND jsonb_array_length(checked -> 'collections') = 1 THEN
        checked := coalesce((SELECT c.search_defaults FROM mmsearch.collection AS c
                             WHERE c.name = checked -> 'collections' ->> 0), '{}') || checked;
    END IF;
    checked := jsonb_build_object('k', 10, 'rrf_k', 60, 'segments', false,
                                  'vector_path', 'auto', 'fusion', 'relative',
                                  'sounds_like', 'speech') || checked;
    PERFORM mmsearch.search_check_integer(checked, 'k', 1, (limits ->> 'max_k')::integer);
    PERFORM mmsearch.search_check_integer(checked, 'rrf_k', 0, (limits ->> 'max_rrf_k')::integer);
    PERFORM mmsearch.search_check_integer(checked, 'ef_search', 1,
                                          (limits ->> 'max_ef_search')::integer);
    PERFORM mmsearch.search_check_integer(checked, 'like_segment', 1, NULL);
    IF jsonb_typeof(checked -> 'segments') <> 'boolean' THEN
        RAISE EXCEPTION 'segments must be true or false' USING ERRCODE = '22023';
    ELSIF checked ->> 'fusion' NOT IN ('relative', 'rrf') THEN
        RAISE EXCEPTION 'fusion must be relative or rrf, not "%"', checked ->> 'fusion'
            USING ERRCODE = '22023';
    ELSIF checked ->> 'sounds_like' NOT IN ('speech', 'all', 'off') THEN
        RAISE EXCEPTION 'sounds_like must be speech, all or off, not "%"',
            checked ->> 'sounds_like' USING ERRCODE = '22023';
    ELSIF checked ->> 'vector_path' NOT IN ('auto', 'exact', 'hnsw') THEN
        RAISE EXCEPTION 'vector_path must be auto, exact or hnsw, not "%"',
            checked ->> 'vector_path' USING ERRCODE = '22023';
    ELSIF EXISTS (SELECT FROM jsonb_each(coalesce(checked -> 'weights', '{}')) AS w
                  WHERE jsonb_typeof(w.value) <> 'number' OR w.value::text::float8 < 0) THEN
        RAISE EXCEPTION 'weights must be numbers >= 0, one per leg' USING ERRCODE = '22023';
    END IF;
    IF checked ? 'query' THEN
        IF length(checked ->> 'query') > (limits ->> 'max_query_chars')::integer THEN
            RAISE EXCEPTION 'the query is longer than % characters',
                limits ->> 'max_query_chars' USING ERRCODE = '22023';
        END IF;
        terms := length(to_tsvector('english'::regconfig, checked ->> 'query'));
        IF terms > (limits ->> 'max_keyword_terms')::integer THEN
            RAISE EXCEPTION 'the keyword search takes at most % distinct words; this query has %',
                limits ->> 'max_keyword_terms', terms
                USING ERRCODE = '22023', HINT = 'Shorten it, or search by vector only.';
        END IF;
    END IF;
    RETURN checked;
END
$fn$;

CREATE OR REPLACE FUNCTION mmsearch.search_check_integer(request jsonb, key text,
                                                         low integer, high integer)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog
AS $fn$
BEGIN
    IF request ? key AND (jsonb_typeof(request -> key) <> 'number'
                          OR (request ->> key)::numeric <> trunc((request ->> key)::numeric)
                          OR (request ->> key)::numeric < low
                          OR (request ->> key)::numeric > coalesce(high, 9.2e18)) THEN
        RAISE EXCEPTION '% must be an integer %', key,
            CASE WHEN high IS NULL THEN format('>= %s', low)
                 ELSE format('between %s and %s', low, high) END
            USING ERRCODE = '22023';
    END IF;
END
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

-- One vector leg of a plan: where and how to compare, with what, and its weight and floor.
CREATE OR REPLACE FUNCTION mmsearch.search_vector_leg(space text, vector text, weight jsonb,
                                                      use_floor boolean)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, public
AS $fn$
DECLARE
    reg   mmsearch.space := mmsearch.space_named(space);
    rules record;
    dims  integer;
BEGIN
    rules := mmsearch.space_rules(reg.dim, reg.distance, reg.column_name);
    dims := vector_dims(vector::vector);  -- text that is no vector: pgvector's own error
    IF dims <> reg.dim THEN
        RAISE EXCEPTION 'query vector has % dimensions; space "%" holds % (model %)',
            dims, reg.name, reg.dim, reg.model_id USING ERRCODE = '22023';
    END IF;
    RETURN jsonb_strip_nulls(jsonb_build_object(
        'name', reg.name, 'column', reg.column_name, 'operator', rules.operator,
        'type', format('%s(%s)', rules.vector_type, reg.dim), 'similarity', rules.similarity,
        'vector', vector::vector::text, 'weight', coalesce(weight, '1'::jsonb),
        'floor', CASE WHEN use_floor THEN reg.options -> 'min_similarity' END,
        'bounded', reg.distance = 'cosine'));
END
$fn$;

-- The vector legs of a request: its query vectors, or the stored vectors of the segment it
-- is "more like" (visible to the caller, else "not found"; no floors: stored vectors are
-- compared with stored vectors) with that segment's record to leave out.
CREATE OR REPLACE FUNCTION mmsearch.search_vector_legs(request jsonb, principals text[],
                                                       OUT legs jsonb, OUT exclude_record bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, public
AS $fn$
DECLARE
    item   record;
    source jsonb;
BEGIN
    legs := '[]';
    PERFORM mmsearch.space_named(name)
    FROM jsonb_array_elements_text(coalesce(request -> 'spaces', '[]')) AS name;
    IF jsonb_typeof(coalesce(request -> 'vectors', '{}')) <> 'object' THEN
        RAISE EXCEPTION 'vectors must be a JSON object: {"space": vector, ...}'
            USING ERRCODE = '22023';
    END IF;
    FOR item IN SELECT key, value #>> '{}' AS vector
                FROM jsonb_each(coalesce(request -> 'vectors', '{}')) ORDER BY key LOOP
        legs := legs || mmsearch.search_vector_leg(item.key, item.vector,
                                                   request -> 'weights' -> item.key, true);
    END LOOP;
    IF request ? 'like_segment' THEN
        SELECT s.record_id, to_jsonb(s) INTO exclude_record, source FROM mmsearch.segment AS s
        WHERE s.id = (request ->> 'like_segment')::bigint AND s.acl && principals;
        IF NOT FOUND THEN  -- one message for "absent" and "hidden": it reveals nothing
            RAISE EXCEPTION 'segment % not found', request ->> 'like_segment'
                USING ERRCODE = 'P0002';
        END IF;
        FOR item IN SELECT sp.name, source ->> sp.column_name AS vector FROM mmsearch.space AS sp
                    WHERE source ->> sp.column_name IS NOT NULL
                      AND (NOT request ? 'spaces' OR sp.name IN (
                           SELECT jsonb_array_elements_text(request -> 'spaces')))
                    ORDER BY sp.name LOOP
            legs := legs || mmsearch.search_vector_leg(item.name, item.vector,
                                                       request -> 'weights' -> item.name, false);
        END LOOP;
    END IF;
END
$fn$;

-- Exact or HNSW, from real counts: the rows that pass the filter and the caller's ACL are
-- counted (up to what an exact ranking may cost) with the indexes that fit the filter. Few
-- pass: rank them all by true distance, which is cheap and never short of results. Many
-- pass: walk the HNSW index with iterative scans, allowed to visit enough tuples for the
-- selectivity that the count proves, with an ef_search that grows with the table (100 up to
-- 500k segments, then one per 5,000: 200 at 1M; on the benchmark's clustered data 40 was
-- short of recall 0.95 at 50k segments, and 1M needed 200). When the planner's estimate is
-- far above the cap (no filter, or a loose one) the count is skipped: reading thousands of
-- rows to learn that many pass cost more than the search. A wrong estimate costs time, not
-- results: a walk that comes up short is completed exactly.
CREATE OR REPLACE FUNCTION mmsearch.search_passing(
    condition text, on_record boolean, on_segment boolean, principals text[], candidates integer,
    OUT few boolean, OUT max_scan_tuples integer, OUT ef_search integer, OUT record_ids bigint[]
)
LANGUAGE plpgsql VOLATILE  -- only so that it may EXPLAIN (it reads, never writes)
SET search_path = pg_catalog, public
AS $fn$
DECLARE
    exact_segments constant integer := 20000;  -- what an exact ranking may cost, in segments
    n_segments double precision;
    per_record double precision;
    cap        integer;
    rows_from  text;
    estimate   jsonb;
    passing    bigint;
BEGIN
    SELECT greatest(c.reltuples, 1) INTO n_segments FROM pg_catalog.pg_class AS c
    WHERE c.oid = 'mmsearch.segment'::regclass;
    SELECT greatest(n_segments / greatest(c.reltuples, 1), 1) INTO per_record
    FROM pg_catalog.pg_class AS c WHERE c.oid = 'mmsearch.record'::regclass;
    IF on_segment THEN
        cap := exact_segments;
        rows_from := format('FROM mmsearch.segment AS s%s WHERE s.acl && %L::text[] AND %s',
                            CASE WHEN on_record THEN ' JOIN mmsearch.record AS r'
                                                     ' ON r.id = s.record_id' ELSE '' END,
                            principals, condition);
    ELSE  -- count records: narrow rows, and the filter's indexes are on them
        cap := ceil(exact_segments / per_record);
        rows_from := format('FROM mmsearch.record AS r CROSS JOIN LATERAL'
                            ' (SELECT r.collection_id) AS s WHERE r.acl && %L::text[] AND %s',
                            principals, condition);
    END IF;
    EXECUTE 'EXPLAIN (FORMAT JSON) SELECT ' || rows_from INTO estimate;
    IF (estimate -> 0 -> 'Plan' ->> 'Plan Rows')::double precision >= 4 * cap THEN
        passing := cap;
    ELSIF on_segment THEN
        EXECUTE format('SELECT count(*) FROM (SELECT %s LIMIT %s) AS passing', rows_from, cap)
            INTO passing;
    ELSE  -- the passing records themselves: an exact leg then reads just their segments
        EXECUTE format('SELECT coalesce(array_agg(id), ''{}'') FROM (SELECT r.id %s LIMIT %s)'
                       ' AS passing',
                       rows_from, cap)
            INTO record_ids;
        passing := coalesce(cardinality(record_ids), 0);
    END IF;
    few := passing < cap;
    IF NOT few THEN
        record_ids := NULL;
    END IF;
    -- visit enough tuples to meet `candidates` passing ones at the rate the count shows (when
    -- many pass: at least exact_segments of n_segments)
    max_scan_tuples := least(greatest(ceil(4.0 * candidates * n_segments / greatest(
        CASE WHEN NOT few THEN exact_segments WHEN on_segment THEN passing
             ELSE passing * per_record END, 1)), 20000), 1000000);
    ef_search := least(greatest(candidates, 100, ceil(n_segments / 5000)), 1000);
END
$fn$;

-- The plan of a request: everything search_compose needs, resolved as the caller's search.
CREATE OR REPLACE FUNCTION mmsearch.search_plan(request jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $fn$
DECLARE
    checked    jsonb := mmsearch.search_checked(request);
    principals text[] := (SELECT mmsearch.current_principals());
    filter     record := mmsearch.request_filter_sql(checked);
    vectors    record := mmsearch.search_vector_legs(checked, principals);
    tsq        tsquery;
    sounds     jsonb;
    spelled    jsonb;
    n_legs     integer;
    candidates integer;
    passing    record;
    unknown    text;
BEGIN
    IF checked ? 'query' THEN
        tsq := mmsearch.keyword_query(checked ->> 'query');
    END IF;
    -- The approximate legs: each with its terms and the query word (lexeme) each term is
    -- for. Plain words only: "-word", quotes and "or" mean what they say, not what looks or
    -- sounds alike.
    IF checked ? 'query' AND NOT mmsearch.websearch_syntax(checked ->> 'query') THEN
        IF checked ->> 'sounds_like' <> 'off' THEN
            SELECT jsonb_build_object(
                       'terms', jsonb_agg(DISTINCT lower(w.code)),
                       'words', jsonb_agg(DISTINCT jsonb_build_array(w.lexeme, lower(w.code))),
                       'tsquery', string_agg(DISTINCT quote_literal(lower(w.code)), ' | ')
                                  ::tsquery::text,
                       'scope', checked ->> 'sounds_like',
                       'weight', coalesce(checked -> 'weights' -> 'sounds_like', '1'::jsonb))
            INTO sounds FROM mmsearch.sound_words(checked ->> 'query') AS w HAVING count(*) > 0;
        END IF;
        -- words of four letters or more: shorter ones share too much with any text
        SELECT jsonb_build_object(
                   'terms', jsonb_agg(DISTINCT w.word),
                   'words', jsonb_agg(DISTINCT jsonb_build_array(w.lexeme, w.word)),
                   'weight', coalesce(checked -> 'weights' -> 'spelled_like', '1'::jsonb))
        INTO spelled FROM mmsearch.text_words(checked ->> 'query') AS w
        WHERE length(w.word) >= 4
        HAVING count(*) > 0;
    END IF;
    n_legs := jsonb_array_length(vectors.legs) + coalesce(numnode(tsq) > 0, false)::integer
              + (sounds IS NOT NULL)::integer + (spelled IS NOT NULL)::integer;
    IF NOT (checked ?| ARRAY['query', 'vectors', 'like_segment']) THEN
        RAISE EXCEPTION 'nothing to search with: give a query, query vectors or like_segment'
            USING ERRCODE = '22023';
    END IF;
    SELECT string_agg(w, ', ') INTO unknown FROM jsonb_object_keys(coalesce(checked -> 'weights',
                                                                           '{}')) AS w
    WHERE w NOT IN ('keyword', 'sounds_like', 'spelled_like')
      AND NOT EXISTS (SELECT FROM mmsearch.space AS sp WHERE sp.name = w);
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'weights name no leg: % (legs are keyword, sounds_like, spelled_like'
                        ' and the space names)', unknown
            USING ERRCODE = '22023';
    END IF;
    candidates := (checked ->> 'k')::integer
                  * CASE WHEN (checked ->> 'segments')::boolean AND n_legs = 1 THEN 1 ELSE 4 END;
    passing := mmsearch.search_passing(filter.condition, filter.on_record, filter.on_segment,
                                       principals, candidates);
    RETURN jsonb_strip_nulls(jsonb_build_object(
        'k', checked -> 'k', 'rrf_k', checked -> 'rrf_k', 'segments', checked -> 'segments',
        'fusion', checked -> 'fusion',
        'candidates', candidates, 'principals', to_jsonb(principals),
        'filter', filter.condition, 'on_record', filter.on_record,
        'on_segment', filter.on_segment, 'few', passing.few,
        'record_ids', CASE WHEN filter.on_record THEN to_jsonb(passing.record_ids) END,
        'exclude_record', vectors.exclude_record,
        'keyword', CASE WHEN numnode(tsq) > 0 THEN jsonb_build_object(
            'query', checked ->> 'query', 'tsquery', tsq::text,
            'weight', coalesce(checked -> 'weights' -> 'keyword', '1'::jsonb)) END,
        'sounds_like', sounds, 'spelled_like', spelled,
        'vectors', (SELECT coalesce(jsonb_agg(leg || jsonb_build_object('path',
                        CASE checked ->> 'vector_path' WHEN 'auto'
                             THEN CASE WHEN passing.few THEN 'exact' ELSE 'hnsw' END
                             ELSE checked ->> 'vector_path' END)), '[]')
                    FROM jsonb_array_elements(vectors.legs) AS leg),
        'ef_search', coalesce((checked ->> 'ef_search')::integer, passing.ef_search),
        'max_scan_tuples', passing.max_scan_tuples));
END
$fn$;

-- Where a leg finds its rows: FROM and WHERE over `s` (segments the caller may see that pass
-- the filter, its own record left out for "more like this"), shaped for the filter:
--   no record in the filter      the segments' own columns and indexes (collection, ACL, time)
--   few records pass             their segments, by the ids the count found (search_passing)
--   many pass, walking an index  each segment the walk yields checked against its record by
--                                primary key, as the walk goes (`per_row`)
--   otherwise                    a join to the records, the planner choosing
CREATE OR REPLACE FUNCTION mmsearch.search_source_sql(plan jsonb, per_row boolean) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog
AS $fn$
DECLARE
    acl     text := format('%L::text[]',
                           ARRAY(SELECT jsonb_array_elements_text(plan -> 'principals')));
    filter  text := plan ->> 'filter';
    visible text := format('s.acl && %s%s', acl,
                           CASE WHEN plan ? 'exclude_record'
                                THEN format(' AND s.record_id <> %s',
                                            (plan ->> 'exclude_record')::bigint)
                                ELSE '' END);
BEGIN
    IF NOT (plan ->> 'on_record')::boolean THEN
        RETURN format('FROM mmsearch.segment AS s WHERE %s AND %s', visible, filter);
    ELSIF plan ? 'record_ids' THEN
        RETURN format('FROM mmsearch.segment AS s WHERE %s AND s.record_id = ANY (%L::bigint[])',
                      visible, ARRAY(SELECT jsonb_array_elements_text(plan -> 'record_ids')));
    ELSIF per_row THEN
        RETURN format('FROM mmsearch.segment AS s CROSS JOIN LATERAL (SELECT FROM mmsearch.record'
                      ' AS r WHERE r.id = s.record_id AND r.acl && %s AND %s OFFSET 0) AS passes'
                      ' WHERE %s', acl, filter, visible);
    END IF;
    RETURN format('FROM mmsearch.segment AS s JOIN mmsearch.record AS r ON r.id = s.record_id'
                  ' AND r.acl && %s WHERE %s AND %s', acl, visible, filter);
END
$fn$;

-- The statement of one vector leg: its candidates, nearest first, as (id, record_id, d).
CREATE OR REPLACE FUNCTION mmsearch.search_vector_leg_sql(plan jsonb, leg jsonb, cte text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog
AS $fn$
DECLARE
    distance text := format('s.%I %s %L::%s', leg ->> 'column', leg ->> 'operator',
                            leg ->> 'vector', leg ->> 'type');
    exact    boolean := leg ->> 'path' = 'exact';
    source   text := mmsearch.search_source_sql(plan, NOT exact);
BEGIN
    IF exact THEN  -- every passing row, ranked by true distance (OFFSET 0: not by the index)
        RETURN format('%s AS MATERIALIZED (SELECT n.id, n.record_id, n.d FROM (SELECT s.id,'
                      ' s.record_id, %s AS d %s AND s.%I IS NOT NULL OFFSET 0) AS n'
                      ' ORDER BY n.d, n.id LIMIT %s)',
                      cte, distance, source, leg ->> 'column', plan ->> 'candidates');
    END IF;
    RETURN format('%s AS MATERIALIZED (SELECT s.id, s.record_id, %s AS d %s AND s.%I IS NOT NULL'
                  ' ORDER BY %s LIMIT %s)',
                  cte, distance, source, leg ->> 'column', distance, plan ->> 'candidates');
END
$fn$;

-- A text leg: segments matching the query's words, ranked by BM25 (k1 1.2, b 0.75), as
-- (id, record_id, rank, score, relative, confidence). Three legs are built this way:
--   keyword       the words of the query against each segment's full text (content_tsv)
--   sounds_like   the Double Metaphone codes of the query's words against those of a
--                 transcript's words (segment.sound_tsv, migration 0008), crediting only
--                 words the segment does not hold as written: whisper's "Steven" is found
--                 by "Stephen", and a segment that says "Stephen" gains nothing twice.
--                 Scope "speech" (the default): transcripts, through their GIN index;
--                 "all": every segment's text as well, without an index (asked for only).
--   spelled_like  the query's words of four letters or more against text read off pictures
--                 (kind "ocr", pg_trgm's word similarity through a trigram index, migration
--                 0009), again only words not held as written: OCR misreads and glues
--                 words ("WEEKmedia"), which no exact match finds.
--
-- Term statistics are those of the rows this very search covers (what the caller may see
-- and the filter passes), taken from the matches themselves: a word's (or code's) document
-- frequency is the number of matching rows that hold it; N the segments the search covers
-- (`text_scope`: counted once a search, up to 2,000, or a leg's matches when more: a bounded
-- cost, and the same count on one server and on Citus; not at all when no leg matched).
-- The approximate legs share that N: counting their own scope (transcripts, OCR: a sparse
-- part of a collection) scanned far for few rows. Lengths in distinct lexemes. So they are
-- always current, and no score depends on rows the caller cannot see (statistics over every
-- row would tell, through scores, whether hidden rows hold a word).
--
-- `covered` is the share of the query's IDF the segment holds (a rare word counts for more
-- than a common one); `held` is BM25 over that of a segment of average length holding each
-- of the query's words once (1 for all of them, more for words said often in a short
-- segment). Both are scaled by a prior: text read off a picture (kind "ocr") says what is
-- written in it, not what it shows, and a typed description shares a word with it by
-- chance: its keyword matches count half; a word that only sounds like the query's counts
-- 0.6 of one written alike, one OCR wrote nearly alike 0.3. `relative`, for the default
-- fusion beside vector legs, is covered to the power 2.5 times 0.8 + 0.2 held (capped): a
-- segment holding the whole query counts as much as the best vector match, one holding half
-- of it 0.18 (with the square, a one-word partial match pushed a second relevant recording
-- out of text-speech's top 10, docs/benchmarks.md "Issue 18, part 3"); without vector legs,
-- the leg ranks by BM25 (held, 5% of its excess over 1 kept). `confidence`, for rank
-- fusion, is held capped at 1.
CREATE OR REPLACE FUNCTION mmsearch.search_text_leg_sql(plan jsonb, leg text, scope_cap integer)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog
AS $fn$
DECLARE
    terms     jsonb := plan -> leg;
    -- the query's terms, as a text[] literal
    words     text := format('%L::text[]',
                             ARRAY(SELECT jsonb_array_elements_text(terms -> 'terms')));
    doc       text;  -- a segment's terms (over `s`)
    match     text;  -- the condition that finds candidates (an index's)
    held      text;  -- the segment's terms that the leg credits
    scope     text := '';
    prior     text;
    -- the approximate legs credit only terms of query words the segment does not hold as
    -- written (a text[] expression over `s`)
    unwritten text := (SELECT format('array_remove(ARRAY[%s], NULL)', string_agg(
                                         format('CASE WHEN NOT s.content_tsv @@ %L::tsquery'
                                                ' THEN %L END', quote_literal(w ->> 0), w ->> 1),
                                         ', '))
                       FROM jsonb_array_elements(terms -> 'words') AS w);
    -- BM25's term-frequency part of a posting p of a match m:
    -- tf (k1 + 1) / (tf + k1 (1 - b + b len / avglen))
    tf_part   text := '(p.tf * 2.2 / (p.tf + 1.2 * (0.25 + 0.75 * m.len / st.avg_len)))';
BEGIN
    IF leg = 'keyword' THEN
        words := format('%L::text[]', tsvector_to_array(
                            to_tsvector('english'::regconfig, terms ->> 'query')));
        doc := 's.content_tsv';
        match := format('s.content_tsv @@ %L::tsquery', terms ->> 'tsquery');
        held := format('ts_filter(setweight(s.content_tsv, ''A'', %s), ''{a}'')', words);
        prior := 'CASE WHEN s.kind = ''ocr'' THEN 0.5 ELSE 1.0 END';
    ELSIF leg = 'spelled_like' THEN
        doc := 's.content_tsv';
        -- pg_trgm: some stretch of the text shares 60% of the word's trigrams (its default
        -- word_similarity_threshold)
        match := format('(%s)', (SELECT string_agg(format('s.content %%> %L', t), ' OR ')
                                 FROM jsonb_array_elements_text(terms -> 'terms') AS t));
        held := format('array_to_tsvector(ARRAY(SELECT t FROM unnest(%s) AS t'
                       ' WHERE t <%% s.content))', unwritten);
        scope := ' AND s.kind = ''ocr''';
        prior := '0.3';
    ELSE
        -- transcripts keep their codes (indexed); other text is coded as it is read
        doc := CASE WHEN terms ->> 'scope' = 'all'
                    THEN 'coalesce(s.sound_tsv, mmsearch.sound_codes(s.content))'
                    ELSE 's.sound_tsv' END;
        match := format('%s @@ %L::tsquery', doc, terms ->> 'tsquery');
        held := format('ts_filter(setweight(%s, ''A'', %s), ''{a}'')', doc, unwritten);
        scope := CASE WHEN terms ->> 'scope' = 'all' THEN ''
                      ELSE ' AND s.kind = ''transcript''' END;
        prior := '0.6';
    END IF;
    RETURN format(
        '%1$s_matches AS MATERIALIZED (SELECT * FROM (SELECT s.id, s.record_id,'
        ' %8$s AS prior, greatest(length(%9$s), 1) AS len, %10$s AS held'
        ' %3$s%11$s AND %4$s OFFSET 0) AS m WHERE length(m.held) > 0),'
        ' %1$s_postings AS MATERIALIZED (SELECT m.id, u.lexeme,'
        ' coalesce(array_length(u.positions, 1), 1) AS tf FROM %1$s_matches AS m,'
        ' unnest(m.held) AS u),'
        ' %1$s_stats AS (SELECT avg(len)::double precision AS avg_len,'
        ' CASE WHEN count(*) = 0 OR count(*) >= %12$s THEN count(*) ELSE greatest(count(*),'
        ' (SELECT n FROM text_scope)) END::double precision AS n FROM %1$s_matches),'
        ' %1$s_idf AS (SELECT w.lexeme, i.idf, greatest(sum(i.idf) OVER (), 1e-9) AS query_idf'
        ' FROM unnest(%2$s) AS w(lexeme) CROSS JOIN %1$s_stats AS st'
        ' LEFT JOIN (SELECT lexeme, count(*) AS df FROM %1$s_postings GROUP BY lexeme) AS d'
        ' ON d.lexeme = w.lexeme CROSS JOIN LATERAL (SELECT ln(1 + (st.n - coalesce(d.df, 0)'
        ' + 0.5) / (coalesce(d.df, 0) + 0.5)) AS idf) AS i),'
        ' %1$s_scored AS (SELECT p.id, m.record_id, m.prior * sum(i.idf * %5$s) AS score,'
        ' m.prior * sum(i.idf * %5$s) / max(i.query_idf) AS held,'
        ' m.prior * sum(i.idf) / max(i.query_idf) AS covered'
        ' FROM %1$s_postings AS p JOIN %1$s_matches AS m ON m.id = p.id'
        ' JOIN %1$s_idf AS i ON i.lexeme = p.lexeme CROSS JOIN %1$s_stats AS st'
        ' GROUP BY p.id, m.record_id, m.prior),'
        ' %1$s AS (SELECT id, record_id, row_number() OVER (ORDER BY score DESC, id) AS rank,'
        ' score, %7$s AS relative,'
        ' least(held, 1.0) AS confidence FROM %1$s_scored ORDER BY score DESC, id LIMIT %6$s)',
        leg, words, mmsearch.search_source_sql(plan, false), match, tf_part,
        plan ->> 'candidates',
        CASE WHEN jsonb_array_length(plan -> 'vectors') > 0
             THEN 'power(covered, 2.5) * (0.8 + 0.2 * least(held, 1.0))'
             ELSE 'least(held, 1.0) + 0.05 * greatest(held - 1.0, 0.0)' END,
        prior, doc, held, scope, scope_cap);
END
$fn$;

-- Fusion, per segment, over the legs that found it:
--   relative (the default)  the sum of weight * the leg's score on a common scale: a vector
--                           hit's confidence (how far its similarity clears the space's
--                           noise floor; without a floor, between the leg's lowest and
--                           best) over the best confidence of any vector leg, so the best
--                           vector hit scores 1 and a leg whose best is weak stays weak; a
--                           text hit's (keyword, sounds_like, spelled_like) share of the
--                           query's IDF to the power 2.5, weighed a little by its BM25 (1:
--                           every word of the query, written as typed). A keyword match
--                           on one common word of the query adds little, and cannot
--                           outvote the best vector match.
--   rrf                     reciprocal rank fusion: the sum of weight * confidence / (rrf_k +
--                           rank), each vector hit's confidence how far its similarity clears
--                           the floor, each text hit's its BM25 confidence.
-- Then the best segment of each record (unless segments => true), the k best.
CREATE OR REPLACE FUNCTION mmsearch.search_fusion_sql(plan jsonb, legs text[]) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog
AS $fn$
    SELECT format('legs AS (%s), scale AS (SELECT coalesce(nullif(max(relative) FILTER'
                  ' (WHERE NOT textual), 0), 1.0) AS best_vector FROM legs),'
                  ' fused AS (SELECT id, record_id, sum(%s) AS score,'
                  ' jsonb_object_agg(leg, rank) AS ranks, jsonb_object_agg(leg, score) AS leg_scores'
                  ' FROM legs CROSS JOIN scale GROUP BY id, record_id), best AS (%s),'
                  ' top AS (SELECT * FROM best ORDER BY score DESC, id LIMIT %s)',
                  array_to_string(legs, ' UNION ALL '),
                  CASE plan ->> 'fusion'
                       WHEN 'rrf' THEN format('weight * confidence / (%s + rank)',
                                              (plan ->> 'rrf_k')::integer)
                       ELSE 'weight * CASE WHEN textual THEN relative'
                            ' ELSE relative / best_vector END' END,
                  CASE WHEN (plan ->> 'segments')::boolean THEN 'SELECT * FROM fused'
                       ELSE 'SELECT DISTINCT ON (record_id) * FROM fused'
                            ' ORDER BY record_id, score DESC, id' END,
                  (plan ->> 'k')::integer)
$fn$;

-- The moment of each hit in time-coded media: the span of the segments of its record that the
-- search found (any leg, any kind: transcript, shot, OCR, sound), scoring at least half the
-- hit's own score, chained to the hit's segment by overlaps or gaps of at most 2 s. A
-- sentence said over a shot whose frame reads the query's words is then one moment, from
-- the first to the last of them; a hit with no such neighbours keeps its own span.
CREATE OR REPLACE FUNCTION mmsearch.search_moment_sql() RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog
AS $fn$
    SELECT 'moment_parts AS (SELECT t.id AS hit, g.id, g.start_s, g.end_s FROM top AS t'
           ' JOIN fused AS f ON f.record_id = t.record_id'
           ' AND (f.score >= 0.5 * t.score OR f.id = t.id)'
           ' JOIN mmsearch.segment AS g ON g.record_id = f.record_id AND g.id = f.id'
           ' WHERE g.start_s IS NOT NULL AND g.end_s IS NOT NULL),'
           ' moment_breaks AS (SELECT hit, id, start_s, end_s, CASE WHEN start_s <= max(end_s)'
           ' OVER (PARTITION BY hit ORDER BY start_s, id ROWS BETWEEN UNBOUNDED PRECEDING'
           ' AND 1 PRECEDING) + 2.0 THEN 0 ELSE 1 END AS starts FROM moment_parts),'
           ' moment_runs AS (SELECT hit, id, start_s, end_s, sum(starts) OVER (PARTITION BY hit'
           ' ORDER BY start_s, id) AS run FROM moment_breaks),'
           ' moments AS (SELECT m.hit, min(m.start_s) AS moment_start_s,'
           ' max(m.end_s) AS moment_end_s FROM moment_runs AS m JOIN moment_runs AS own'
           ' ON own.hit = m.hit AND own.id = m.hit AND own.run = m.run GROUP BY m.hit)'
$fn$;

-- The statement of a plan. Plain: the hits, best first (what --explain shows and what the
-- caller may run). Wrapped: one jsonb {"hits": [...], "counts": {leg: candidates found}}.
CREATE OR REPLACE FUNCTION mmsearch.search_compose(plan jsonb, wrapped boolean DEFAULT false)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog
AS $fn$
DECLARE
    leg    jsonb;
    n      integer := 0;
    ctes   text[] := '{}';
    legs   text[] := '{}';
    counts text[] := '{}';
    hits   text;
    similarity text;
    text_leg   text;
    -- how far a search counts the segments it covers (the text legs' N)
    text_scope_cap constant integer := 2000;
BEGIN
    FOR leg IN SELECT jsonb_array_elements(plan -> 'vectors') LOOP
        n := n + 1;
        similarity := format(leg ->> 'similarity', 'd');
        ctes := ctes || mmsearch.search_vector_leg_sql(plan, leg, 'leg_' || n)
                     || format('ranked_%s AS (SELECT id, record_id,'
                               ' row_number() OVER (ORDER BY d, id) AS rank, %s AS score,'
                               ' (%s)::double precision AS confidence FROM leg_%s%s)',
                               n, similarity,
                               CASE WHEN leg ? 'floor' AND (leg ->> 'bounded')::boolean
                                    THEN format('(%s - %s) / (1.0 - %2$s)', similarity,
                                                (leg ->> 'floor')::float8)
                                    ELSE '1.0' END,
                               n,
                               CASE WHEN leg ? 'floor'
                                    THEN format(' WHERE %s >= %s', similarity,
                                                (leg ->> 'floor')::float8)
                                    ELSE '' END);
        -- on 0..1: how far the similarity clears the floor (a space without one: between
        -- the leg's lowest and its best); the fusion scales every vector leg by the best
        legs := legs || format('SELECT %L::text AS leg, false AS textual, id, record_id, rank,'
                               ' score, confidence, %s AS relative,'
                               ' %s::double precision AS weight FROM ranked_%s',
                               leg ->> 'name',
                               CASE WHEN leg ? 'floor' AND (leg ->> 'bounded')::boolean
                                    THEN 'confidence'
                                    ELSE 'coalesce((score - min(score) OVER ()) / nullif(max(score)'
                                         ' OVER () - min(score) OVER (), 0), 1.0)' END,
                               (leg ->> 'weight')::float8, n);
        counts := counts || format('%L, (SELECT count(*) FROM leg_%s)', leg ->> 'name', n);
    END LOOP;
    IF plan ?| ARRAY['keyword', 'sounds_like', 'spelled_like'] THEN  -- N of the text legs
        ctes := ctes || format('text_scope AS (SELECT count(*)::double precision AS n FROM'
                               ' (SELECT 1 %s LIMIT %s) AS covered)',
                               mmsearch.search_source_sql(plan, false), text_scope_cap);
    END IF;
    FOREACH text_leg IN ARRAY ARRAY['keyword', 'sounds_like', 'spelled_like'] LOOP
        CONTINUE WHEN NOT plan ? text_leg;
        ctes := ctes || mmsearch.search_text_leg_sql(plan, text_leg, text_scope_cap);
        legs := legs || format('SELECT %L::text AS leg, true AS textual, id, record_id, rank,'
                               ' score, confidence, relative,'
                               ' %s::double precision AS weight FROM %I',
                               text_leg, (plan -> text_leg ->> 'weight')::float8, text_leg);
        counts := counts || format('%L, (SELECT count(*) FROM %I)', text_leg,
                                   text_leg || '_matches');
    END LOOP;
    IF cardinality(legs) = 0 THEN  -- e.g. only stop words, or a segment without vectors
        RETURN CASE WHEN wrapped THEN 'SELECT ''{"hits": [], "counts": {}}''::jsonb'
                    ELSE 'SELECT (NULL::mmsearch.search_hit).* WHERE false' END;
    END IF;
    ctes := ctes || mmsearch.search_fusion_sql(plan, legs) || mmsearch.search_moment_sql();
    hits := format('SELECT r.id AS record_id, c.name AS collection, r.uri, r.title, r.media_type,'
                   ' s.id AS segment_id, s.kind, s.start_s, s.end_s, s.char_start, s.char_end,'
                   ' t.score, mmsearch.snippet(s.content, s.metadata, (SELECT CASE WHEN'
                   ' m.k IS NULL THEN m.v WHEN m.v IS NULL THEN m.k ELSE m.k || m.v END FROM'
                   ' (SELECT CASE WHEN t.ranks ? ''keyword'' THEN %L::tsquery END AS k,'
                   ' CASE WHEN t.ranks ? ''sounds_like'' THEN mmsearch.sounding_words(s.content,'
                   ' %L::text[]) END AS v) AS m)) AS snippet,'
                   ' t.ranks, t.leg_scores, mo.moment_start_s, mo.moment_end_s FROM top AS t'
                   ' JOIN mmsearch.segment AS s ON s.id = t.id'
                   ' JOIN mmsearch.record AS r ON r.id = s.record_id AND r.acl && %L::text[]'
                   ' JOIN mmsearch.collection AS c ON c.id = r.collection_id'
                   ' LEFT JOIN moments AS mo ON mo.hit = t.id'
                   ' ORDER BY t.score DESC, t.id',
                   plan -> 'keyword' ->> 'tsquery',
                   ARRAY(SELECT jsonb_array_elements_text(plan -> 'sounds_like' -> 'terms')),
                   ARRAY(SELECT jsonb_array_elements_text(plan -> 'principals')));
    IF NOT wrapped THEN
        RETURN 'WITH ' || array_to_string(ctes, ', ') || ' ' || hits;
    END IF;
    RETURN format('WITH %s, hits AS (%s) SELECT jsonb_build_object(''hits'','
                  ' coalesce((SELECT jsonb_agg(to_jsonb(h) ORDER BY h.score DESC, h.segment_id)'
                  ' FROM hits AS h), ''[]''::jsonb), ''counts'', jsonb_build_object(%s))',
                  array_to_string(ctes, ', '), hits, array_to_string(counts, ', '));
END
$fn$;

-- The settings a plan's statement runs under ({name: value}): relaxed iterative HNSW scans
-- with the plan's ef_search and max_scan_tuples, and, when a leg walks HNSW, sorts off: the
-- planner cannot know that the walk stops at the LIMIT, and would rather sort the passing
-- rows than use the index.
CREATE OR REPLACE FUNCTION mmsearch.search_settings(plan jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog
AS $fn$
    SELECT jsonb_build_object(
        'hnsw.iterative_scan', 'relaxed_order',
        'hnsw.ef_search', (plan ->> 'ef_search')::integer::text,
        'hnsw.max_scan_tuples', (plan ->> 'max_scan_tuples')::integer::text,
        'enable_sort', CASE WHEN plan -> 'vectors' @> '[{"path": "hnsw"}]' THEN 'off'
                            ELSE 'on' END,
        -- two cores under concurrent searches: a worker's start costs more than it saves
        'max_parallel_workers_per_gather', '0')
$fn$;

-- What a request runs, for people: the settings, the statement, and both as a script to
-- paste into psql (where it returns the same rows, row-level security applying).
CREATE OR REPLACE FUNCTION mmsearch.search_statement(request jsonb, OUT settings jsonb,
                                                     OUT statement text, OUT script text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog
AS $fn$
DECLARE
    plan jsonb := mmsearch.search_plan(request);
BEGIN
    settings := mmsearch.search_settings(plan);
    statement := mmsearch.search_compose(plan);
    script := format(E'BEGIN;\n%s\n%s;\nCOMMIT;',
                     (SELECT string_agg(format('SET LOCAL %s = %s;', s.key, s.value), E'\n'
                                        ORDER BY s.key)
                      FROM jsonb_each_text(settings) AS s),
                     statement);
END
$fn$;
COMMENT ON FUNCTION mmsearch.search_statement(jsonb) IS
    'What mmsearch.search runs for a request (mmsearch.search_args(...)): its settings, its '
    'statement (every value inlined as a quoted literal), and both as a script for psql, '
    'where it returns the same rows, row-level security applying.';

-- Run a request as the caller's search: the plan's statement under its settings, again with
-- four times the candidates while grouping to records left fewer than k hits and a leg may
-- have more to give (it filled its candidates, or its HNSW walk stopped early: that leg
-- then ranks exactly).
CREATE OR REPLACE FUNCTION mmsearch.search_request(request jsonb)
RETURNS SETOF mmsearch.search_hit
LANGUAGE plpgsql VOLATILE SECURITY DEFINER  -- VOLATILE: it runs SET LOCAL
SET search_path = pg_catalog, public, pg_temp
-- On Citus: reference tables read locally earlier in the transaction would forbid the
-- statement's distributed subplans ("cannot switch local execution status"); elsewhere an
-- inert placeholder
SET citus.enable_local_execution = off
SET hnsw.iterative_scan = relaxed_order
SET hnsw.ef_search = 40
SET hnsw.max_scan_tuples = 20000
SET enable_sort = on
SET max_parallel_workers_per_gather = 2
AS $fn$
DECLARE
    plan    jsonb := mmsearch.search_plan(request);
    result  jsonb;
    short   jsonb;
    grow    boolean;
    setting record;
BEGIN
    FOR attempt IN 1..5 LOOP  -- 4 growths take k candidates past 4000; one more for exact legs
        -- transaction-local, and undone when the function returns (its SET clauses)
        -- SET LOCAL, not set_config(): Citus forwards only SET LOCAL to the shards
        FOR setting IN SELECT * FROM jsonb_each_text(mmsearch.search_settings(plan)) LOOP
            EXECUTE format('SET LOCAL %s = %L', setting.key, setting.value);
        END LOOP;
        EXECUTE mmsearch.search_compose(plan, true) INTO result;
        -- an HNSW walk that stopped before its candidates (max_scan_tuples, memory) may have
        -- missed nearer rows, whatever the hits: that leg ranks exactly
        SELECT coalesce(jsonb_agg(CASE WHEN leg ->> 'path' = 'hnsw'
                                   AND (result -> 'counts' ->> (leg ->> 'name'))::integer
                                       < (plan ->> 'candidates')::integer
                              THEN leg || '{"path": "exact"}' ELSE leg END), '[]')
        INTO short FROM jsonb_array_elements(plan -> 'vectors') AS leg;
        grow := jsonb_array_length(result -> 'hits') < (plan ->> 'k')::integer
                AND (plan ->> 'candidates')::integer < 4000  -- k <= 1000: four per hit
                AND EXISTS (SELECT FROM jsonb_each_text(result -> 'counts') AS c
                            WHERE c.value::integer >= (plan ->> 'candidates')::integer);
        EXIT WHEN short = plan -> 'vectors' AND NOT grow;
        plan := plan || jsonb_build_object(
            'vectors', short,
            'candidates', (plan ->> 'candidates')::integer * CASE WHEN grow THEN 4 ELSE 1 END);
    END LOOP;
    RETURN QUERY SELECT * FROM jsonb_populate_recordset(NULL::mmsearch.search_hit, result -> 'hits');
END
$fn$;
