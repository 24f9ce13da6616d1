-- The rules of search that every other part uses: how a space stores and compares vectors,
-- how a typed query becomes a full-text query, how a filter becomes a condition, and the
-- limits of a request. Written once, here; the search functions (047, 050), register_space
-- (020) and the Python API (which calls mmsearch.search) all go through these.

-- The search's internal functions (this file's and 047's) are dropped and created afresh on
-- every upgrade, so that a change of arguments or result columns needs no hand-written DROP.
-- Nothing records a dependency on them: the functions that call them are plpgsql, or SQL
-- functions whose bodies are strings. The analyst-facing functions (050) are kept.
-- Replaced by the BM25 keyword leg (047)
DROP FUNCTION IF EXISTS mmsearch.keyword_coverage(tsvector, text);

DO $drop$
DECLARE
    fn regprocedure;
BEGIN
    FOR fn IN SELECT p.oid::regprocedure FROM pg_catalog.pg_proc AS p
              WHERE p.pronamespace = 'mmsearch'::regnamespace
                AND p.proname IN ('space_rules', 'space_index', 'search_limits', 'snippet',
                                  'sounding_words', 'websearch_syntax',
                                  'filter_sql', 'filter_record_sql', 'filter_column_sql',
                                  'request_filter_sql', 'search_checked', 'search_check_integer',
                                  'search_vector_leg', 'search_vector_legs', 'search_passing',
                                  'search_plan', 'search_source_sql',
                                  'search_vector_leg_sql', 'search_keyword_leg_sql',
                                  'search_text_leg_sql', 'search_fusion_sql',
                                  'search_moment_sql', 'search_compose',
                                  'search_settings', 'search_statement', 'search_request')
    LOOP
        EXECUTE format('DROP FUNCTION %s', fn);
    END LOOP;
END
$drop$;

-- How a space stores and compares its vectors: pgvector type (halfvec above 2000
-- dimensions, HNSW's limit for vector), operator class, distance operator, index name, and
-- the similarity shown to users as a format() pattern over the distance (%s).
CREATE OR REPLACE FUNCTION mmsearch.space_rules(
    dim integer, distance text, column_name text,
    OUT vector_type text, OUT opclass text, OUT operator text, OUT index_name text,
    OUT similarity text
)
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog
AS $fn$
    SELECT t.vtype,
           t.vtype || CASE distance WHEN 'cosine' THEN '_cosine_ops' WHEN 'ip' THEN '_ip_ops'
                                    ELSE '_l2_ops' END,
           CASE distance WHEN 'cosine' THEN '<=>' WHEN 'ip' THEN '<#>' ELSE '<->' END,
           'segment_' || column_name || '_hnsw',
           CASE distance WHEN 'cosine' THEN '1 - (%s)' ELSE '-(%s)' END
    FROM (SELECT CASE WHEN dim > 2000 THEN 'halfvec' ELSE 'vector' END AS vtype) AS t
$fn$;
COMMENT ON FUNCTION mmsearch.space_rules(integer, text, text) IS
    'How a space of this dimension and distance stores and compares vectors: pgvector type, '
    'HNSW operator class, distance operator, index name, and the similarity shown to users '
    '(a format() pattern over the distance).';

-- The HNSW index of a registered space: its name and the statement that creates it (used by
-- register_space and by bulk loaders that drop the index while they copy).
CREATE OR REPLACE FUNCTION mmsearch.space_index(space text, OUT index_name text,
                                                OUT create_statement text)
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog
AS $fn$
    SELECT r.index_name,
           format('CREATE INDEX IF NOT EXISTS %I ON mmsearch.segment USING hnsw (%I %s)',
                  r.index_name, sp.column_name, r.opclass)
    FROM mmsearch.space AS sp,
         mmsearch.space_rules(sp.dim, sp.distance, sp.column_name) AS r
    WHERE sp.name = space_index.space
$fn$;
REVOKE EXECUTE ON FUNCTION mmsearch.space_index(text) FROM PUBLIC;

-- Limits of a search request. A keyword query of thousands of words kept the server busy
-- for minutes; k above 1000 is not a search but an export.
CREATE OR REPLACE FUNCTION mmsearch.search_limits() RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $fn$
    SELECT jsonb_build_object('max_k', 1000, 'max_query_chars', 2000, 'max_keyword_terms', 32,
                              'max_rrf_k', 100000, 'max_ef_search', 1000)
$fn$;
COMMENT ON FUNCTION mmsearch.search_limits() IS
    'Limits of a search request: k, query length in characters, distinct words of the keyword '
    'leg, rrf_k, ef_search.';

-- The keyword leg's query. Typed without operators, a query is any of its words
-- (plainto_tsquery's & turned into |), ranked by BM25 (047): people describe what they want
-- in their own words, and requiring every word finds nothing for most descriptions (the
-- evaluation's paraphrase queries matched 1 in 60 spoken prompts that way). Quotes, "or" or
-- a -word select websearch syntax, and with it the user's own logic.
CREATE OR REPLACE FUNCTION mmsearch.websearch_syntax(query text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog
AS $fn$
    SELECT query ~* '"|(^|\s)-\w|\sor\s'
$fn$;

CREATE OR REPLACE FUNCTION mmsearch.keyword_query(query text) RETURNS tsquery
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog
AS $fn$
    SELECT CASE
        WHEN mmsearch.websearch_syntax(query) THEN websearch_to_tsquery('english'::regconfig, query)
        ELSE replace(plainto_tsquery('english'::regconfig, query)::text, ' & ', ' | ')::tsquery
    END
$fn$;

-- The snippet of a hit: matched words marked «» when the keyword leg found it, else the start
-- of its text (or an image's caption).
CREATE OR REPLACE FUNCTION mmsearch.snippet(content text, metadata jsonb, matched tsquery)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $fn$
    SELECT CASE WHEN matched IS NOT NULL
                THEN ts_headline('english'::regconfig, content, matched,
                                 'MaxFragments=2, MaxWords=25, MinWords=8, StartSel=«, StopSel=»')
                ELSE coalesce(left(content, 240), metadata ->> 'caption') END
$fn$;

-- The words of a text that sound like the query's (codes: the sounds_like leg's), as a
-- tsquery of their lexemes, for the snippet to mark.
CREATE OR REPLACE FUNCTION mmsearch.sounding_words(content text, codes text[]) RETURNS tsquery
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $fn$
    SELECT string_agg(DISTINCT quote_literal(w.lexeme), ' | ')::tsquery
    FROM mmsearch.sound_words(content) AS w WHERE lower(w.code) = ANY (codes)
$fn$;

-- A filter tree (the JSON form of the API's filter expressions) as an SQL condition over
-- `r` (mmsearch.record) and `s` (mmsearch.segment), every value a quoted literal and every
-- column one of this function's own. `on_record` says whether it reads the record,
-- `on_segment` whether it reads a column only segments have (start_s, end_s, kind); the
-- collection is read as `s.collection_id`, which records have too. Nodes:
--   {"and": [node, ...]}  {"or": [node, ...]}  {"not": node}
--   {"meta": KEY, "op": OP, "value": V}     record metadata: = and != are JSON equality
--                                            (jsonb containment), < <= > >= compare numbers
--                                            with numbers and strings with strings
--   {"has_meta": KEY}                        the key exists
--   {"tags": [T, ...], "all": BOOL}          any (or all) of the tags
--   {"column": C, "op": OP, "value": V}      collection | media_type | mime | kind (= and !=),
--                                            start_s | end_s | duration_s | width | height
--                                            (numbers; NULL compares false) | ingested_at |
--                                            created_at (ISO 8601 text)
-- Every test is two-valued (a missing key or a NULL column is false, never NULL), so "not"
-- means exactly the other rows.
CREATE OR REPLACE FUNCTION mmsearch.filter_sql(tree jsonb, OUT condition text,
                                               OUT on_record boolean, OUT on_segment boolean)
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog
AS $fn$
DECLARE
    item  jsonb;
    part  record;
    parts text[] := '{}';
BEGIN
    on_record := false;
    on_segment := false;
    IF jsonb_typeof(tree) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'a filter node must be a JSON object, not %', coalesce(tree::text, 'null')
            USING ERRCODE = '22023';
    ELSIF tree ? 'and' OR tree ? 'or' THEN
        IF jsonb_typeof(coalesce(tree -> 'and', tree -> 'or')) <> 'array' THEN
            RAISE EXCEPTION 'filter "and"/"or" takes an array of nodes' USING ERRCODE = '22023';
        END IF;
        FOR item IN SELECT jsonb_array_elements(coalesce(tree -> 'and', tree -> 'or')) LOOP
            part := mmsearch.filter_sql(item);
            parts := parts || ('(' || part.condition || ')');
            on_record := on_record OR part.on_record;
            on_segment := on_segment OR part.on_segment;
        END LOOP;
        condition := CASE WHEN cardinality(parts) = 0 THEN (tree ? 'and')::text
                          ELSE '(' || array_to_string(parts,
                                      CASE WHEN tree ? 'and' THEN ' AND ' ELSE ' OR ' END) || ')'
                     END;
    ELSIF tree ? 'not' THEN
        part := mmsearch.filter_sql(tree -> 'not');
        condition := 'NOT (' || part.condition || ')';
        on_record := part.on_record;
        on_segment := part.on_segment;
    ELSIF tree ? 'column' THEN
        SELECT f.condition, f.on_record, f.on_segment INTO condition, on_record, on_segment
        FROM mmsearch.filter_column_sql(tree ->> 'column', tree ->> 'op', tree -> 'value') AS f;
    ELSE
        condition := mmsearch.filter_record_sql(tree);
        on_record := true;
    END IF;
END
$fn$;

-- The leaves on record metadata and tags (see filter_sql).
CREATE OR REPLACE FUNCTION mmsearch.filter_record_sql(leaf jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog
AS $fn$
DECLARE
    op    text := coalesce(leaf ->> 'op', '=');
    value jsonb := leaf -> 'value';
    typed text;
BEGIN
    IF leaf ? 'has_meta' THEN
        RETURN format('r.metadata ? %L::text', leaf ->> 'has_meta');
    ELSIF leaf ? 'tags' THEN
        IF jsonb_typeof(leaf -> 'tags') <> 'array' OR jsonb_array_length(leaf -> 'tags') = 0 THEN
            RAISE EXCEPTION 'a tag test needs a non-empty array of tags' USING ERRCODE = '22023';
        END IF;
        RETURN format('r.tags %s %L::text[]',
                      CASE WHEN (leaf ->> 'all')::boolean THEN '@>' ELSE '&&' END,
                      ARRAY(SELECT jsonb_array_elements_text(leaf -> 'tags')));
    ELSIF NOT leaf ? 'meta' THEN
        RAISE EXCEPTION 'unknown filter node %', left(leaf::text, 200) USING ERRCODE = '22023';
    ELSIF op IN ('=', '!=') THEN
        RETURN format(CASE op WHEN '=' THEN '%s' ELSE 'NOT (%s)' END,
                      format('r.metadata @> %L::jsonb',
                             jsonb_build_object(leaf ->> 'meta', coalesce(value, 'null'))));
    ELSIF op NOT IN ('<', '<=', '>', '>=') THEN
        RAISE EXCEPTION 'unknown comparison "%": use =, !=, <, <=, >, >=', op
            USING ERRCODE = '22023';
    END IF;
    typed := CASE jsonb_typeof(value)
        WHEN 'string' THEN format('(r.metadata ->> %L::text) COLLATE "C" %s %L::text',
                                  leaf ->> 'meta', op, value #>> '{}')
        WHEN 'number' THEN format('(r.metadata ->> %L::text)::numeric %s %L::numeric',
                                  leaf ->> 'meta', op, value #>> '{}')
    END;
    IF typed IS NULL THEN
        RAISE EXCEPTION '% needs a number or a string, not %', op, coalesce(value::text, 'null')
            USING ERRCODE = '22023';
    END IF;
    -- CASE, not AND: only CASE guarantees the cast never sees a non-number
    RETURN format('CASE WHEN jsonb_typeof(r.metadata -> %L::text) = %L THEN %s ELSE false END',
                  leaf ->> 'meta', jsonb_typeof(value), typed);
END
$fn$;

-- The leaves on columns (see filter_sql). `collection` is read on the segment (which carries
-- its record's collection), so a collection filter needs no record.
CREATE OR REPLACE FUNCTION mmsearch.filter_column_sql(name text, op text, value jsonb,
                                                      OUT condition text, OUT on_record boolean,
                                                      OUT on_segment boolean)
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog
AS $fn$
DECLARE
    col  text;
    kind text;
BEGIN
    SELECT c.col, c.kind INTO col, kind FROM (VALUES
        ('collection', 's.collection_id', 'collection'), ('media_type', 'r.media_type', 'text'),
        ('mime', 'r.mime', 'text'), ('kind', 's.kind', 'text'),
        ('start_s', 's.start_s', 'number'), ('end_s', 's.end_s', 'number'),
        ('duration_s', 'r.duration_s', 'number'), ('width', 'r.width', 'number'),
        ('height', 'r.height', 'number'), ('ingested_at', 'r.ingested_at', 'time'),
        ('created_at', 'r.created_at', 'time')) AS c(name, col, kind)
    WHERE c.name = filter_column_sql.name;
    IF col IS NULL THEN
        RAISE EXCEPTION 'unknown filter column "%"', name USING ERRCODE = '22023';
    ELSIF op IS NULL OR op NOT IN ('=', '!=', '<', '<=', '>', '>=')
          OR (kind IN ('text', 'collection') AND op NOT IN ('=', '!=')) THEN
        RAISE EXCEPTION 'filter column "%" cannot be compared with "%"', name, op
            USING ERRCODE = '22023';
    ELSIF jsonb_typeof(value) IS DISTINCT FROM (CASE kind WHEN 'number' THEN 'number'
                                                          ELSE 'string' END) THEN
        RAISE EXCEPTION 'filter column "%" compares with a %, not %', name,
            CASE kind WHEN 'number' THEN 'number' ELSE 'string' END, coalesce(value::text, 'null')
            USING ERRCODE = '22023';
    END IF;
    on_record := col LIKE 'r.%';
    on_segment := col LIKE 's.%' AND kind <> 'collection';
    condition := CASE kind
        WHEN 'collection' THEN format(
            's.collection_id IN (SELECT c.id FROM mmsearch.collection AS c WHERE c.name = %L)',
            value #>> '{}')
        WHEN 'text' THEN format('%s = %L::text', col, value #>> '{}')
        WHEN 'number' THEN format('(%1$s IS NOT NULL AND %1$s %2$s %3$L::double precision)',
                                  col, op, value #>> '{}')
        ELSE format('%s %s %L::timestamptz', col, op, value #>> '{}')
    END;
    IF kind IN ('text', 'collection') AND op = '!=' THEN
        condition := 'NOT (' || condition || ')';
    END IF;
END
$fn$;

-- The filter of a whole request: its fixed fields (collections, media_types, tags, tags_all,
-- metadata, start_s/end_s overlap, ingested_after/_before) and its filter tree, ANDed.
CREATE OR REPLACE FUNCTION mmsearch.request_filter_sql(request jsonb, OUT condition text,
                                                       OUT on_record boolean,
                                                       OUT on_segment boolean)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog
AS $fn$
DECLARE
    parts text[] := '{}';
    tree  record;
BEGIN
    on_record := false;
    on_segment := request ? 'start_s' OR request ? 'end_s';
    IF request ? 'collections' THEN
        parts := parts || format('s.collection_id = ANY (%L::integer[])', ARRAY(
            SELECT c.id FROM mmsearch.collection AS c
            WHERE c.name IN (SELECT jsonb_array_elements_text(request -> 'collections'))));
    END IF;
    IF request ? 'start_s' THEN
        parts := parts || format('coalesce(s.end_s, s.start_s) >= %L::double precision',
                                 request ->> 'start_s');
    END IF;
    IF request ? 'end_s' THEN
        parts := parts || format('s.start_s <= %L::double precision', request ->> 'end_s');
    END IF;
    IF request ? 'filter' THEN
        tree := mmsearch.filter_sql(request -> 'filter');
        parts := parts || ('(' || tree.condition || ')');
        on_record := tree.on_record;
        on_segment := on_segment OR tree.on_segment;
    END IF;
    SELECT parts || array_agg(p), on_record OR count(*) > 0 INTO parts, on_record FROM (
        SELECT format('r.media_type = ANY (%L::text[])',
                      ARRAY(SELECT jsonb_array_elements_text(request -> 'media_types'))) AS p
        WHERE request ? 'media_types'
        UNION ALL SELECT format('r.tags && %L::text[]',
                                ARRAY(SELECT jsonb_array_elements_text(request -> 'tags')))
        WHERE request ? 'tags'
        UNION ALL SELECT format('r.tags @> %L::text[]',
                                ARRAY(SELECT jsonb_array_elements_text(request -> 'tags_all')))
        WHERE request ? 'tags_all'
        UNION ALL SELECT format('r.metadata @> %L::jsonb', request -> 'metadata')
        WHERE request ? 'metadata'
        UNION ALL SELECT format('r.ingested_at >= %L::timestamptz', request ->> 'ingested_after')
        WHERE request ? 'ingested_after'
        UNION ALL SELECT format('r.ingested_at < %L::timestamptz', request ->> 'ingested_before')
        WHERE request ? 'ingested_before'
    ) AS record_parts;
    condition := coalesce(nullif(array_to_string(parts, ' AND '), ''), 'true');
END
$fn$;

REVOKE EXECUTE ON FUNCTION mmsearch.filter_sql(jsonb), mmsearch.filter_record_sql(jsonb),
                           mmsearch.filter_column_sql(text, text, jsonb),
                           mmsearch.request_filter_sql(jsonb)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mmsearch.filter_sql(jsonb), mmsearch.filter_record_sql(jsonb),
                          mmsearch.filter_column_sql(text, text, jsonb),
                          mmsearch.request_filter_sql(jsonb)
    TO :"role_search", :"role_app", :"role_analyst";
