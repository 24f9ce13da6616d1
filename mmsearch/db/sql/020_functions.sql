-- Functions every other part relies on. All pin search_path and qualify names.

-- Whom the caller acts for. A person's login gets the principals the owner gave it in
-- mmsearch.person (by session_user: SET ROLE cannot change it, and nothing the person sets
-- counts). Only members of the app role, i.e. the application's service login, pass
-- principals per request, in the transaction-local setting mmsearch.principals, a JSON array
-- of principal strings; for anyone else that setting is never even read. Everybody is
-- `public`.
--
-- Cheap per call, because on Citus the policies call it once per row on the shards
-- (030_security.sql; one server runs it once per query): an SQL expression that the planner
-- inlines, with no table read and no set-returning JSON function on the app's path: the
-- setting is checked as JSON (anything else fails the query), and its normal form's
-- brackets become an array literal's braces (the same strings for principals, which hold
-- no brackets; nested arrays fail). The body is parsed once, at creation (RETURN …), so
-- no caller's search_path can change what it calls. A person's stored principals come from
-- person_principals(), SECURITY DEFINER, owned by the views role (030_security.sql):
-- nobody else reads mmsearch.person.
CREATE OR REPLACE FUNCTION mmsearch.person_principals() RETURNS text[]
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog
-- On Citus this runs on the shards, where reading the reference table mmsearch.person is a
-- nested distributed query; it reads that table's local copy, nothing else (elsewhere the
-- setting is an inert placeholder).
SET citus.allow_nested_distributed_execution = on
AS $$
DECLARE
    -- taken here, passed as a value: Citus may run the read on another node (or over a
    -- connection to this one), where session_user would be this function's owner
    me name := session_user;
BEGIN
    RETURN coalesce((SELECT u.principals FROM mmsearch.person AS u WHERE u.login = me), '{}');
END
$$;
COMMENT ON FUNCTION mmsearch.person_principals() IS
    'The principals the owner gave the session''s login (mmsearch user principals NAME P...).';

CREATE OR REPLACE FUNCTION mmsearch.current_principals() RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE WHEN pg_catalog.pg_has_role(SESSION_USER, :'role_app', 'MEMBER')
            THEN pg_catalog.translate(
                     coalesce(nullif(pg_catalog.current_setting('mmsearch.principals', true), ''),
                              '[]')::jsonb::text,
                     '[]', '{}')::text[]
            ELSE mmsearch.person_principals() END
       || 'public'::text;
COMMENT ON FUNCTION mmsearch.current_principals() IS
    'The caller''s principals, plus public: a person''s login gets those the owner gave it '
    '(mmsearch user principals NAME P...); the application''s service login passes them per '
    'transaction: SET LOCAL mmsearch.principals = ''["user:alice"]''.';

CREATE OR REPLACE FUNCTION mmsearch.register_space(
    p_name text, p_modalities text[], p_model_id text, p_revision text,
    p_dim integer, p_distance text, p_options jsonb DEFAULT '{}'
) RETURNS mmsearch.space
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    existing mmsearch.space;
    created  mmsearch.space;
    col      text := p_name || '_vec';
    rules    record := mmsearch.space_rules(p_dim, p_distance, p_name || '_vec');
BEGIN
    IF p_dim IS NULL OR p_dim < 1 OR p_dim > 4000 THEN
        RAISE EXCEPTION 'space "%": dim % is outside 1..4000 (the HNSW limit)', p_name, p_dim
            USING ERRCODE = '22023';
    END IF;
    LOCK TABLE mmsearch.space IN SHARE ROW EXCLUSIVE MODE;
    SELECT * INTO existing FROM mmsearch.space WHERE name = p_name;
    IF FOUND THEN
        IF existing.model_id = p_model_id AND existing.revision = p_revision
           AND existing.dim = p_dim AND existing.distance = p_distance
           AND existing.modalities @> p_modalities AND existing.modalities <@ p_modalities THEN
            -- options (e.g. min_similarity) describe how to query, not the vectors: refresh
            IF existing.options IS DISTINCT FROM coalesce(p_options, '{}') THEN
                UPDATE mmsearch.space SET options = coalesce(p_options, '{}')
                WHERE id = existing.id RETURNING * INTO existing;
            END IF;
            RETURN existing;
        END IF;
        RAISE EXCEPTION 'space "%" already holds vectors of % (revision %, dim %, %); '
                        'register % under a new space name',
                        p_name, existing.model_id, existing.revision, existing.dim,
                        existing.distance, p_model_id
            USING ERRCODE = 'MS001',
                  HINT = 'A model change is a new space: vectors of two models never share a column.';
    END IF;

    INSERT INTO mmsearch.space (name, modalities, model_id, revision, dim, distance, column_name, options)
    VALUES (p_name, p_modalities, p_model_id, coalesce(p_revision, ''), p_dim, p_distance, col, p_options)
    RETURNING * INTO created;

    -- the type, operator class and index name are the space's rules (046_search_rules.sql)
    EXECUTE format('ALTER TABLE mmsearch.segment ADD COLUMN %I %s(%s)', col, rules.vector_type,
                   p_dim);
    EXECUTE (SELECT i.create_statement FROM mmsearch.space_index(p_name) AS i);
    RETURN created;
END
$$;
-- Adding columns and indexes is the owner's business, not every role's.
REVOKE EXECUTE ON FUNCTION mmsearch.register_space(text, text[], text, text, integer, text, jsonb)
    FROM PUBLIC;
COMMENT ON FUNCTION mmsearch.register_space(text, text[], text, text, integer, text, jsonb) IS
    'Register a named vector space: adds segment.<name>_vec and its HNSW index. Idempotent for '
    'the same model; a different model, revision, dim or distance under an existing name is refused.';

CREATE OR REPLACE FUNCTION mmsearch.drop_space(p_name text) RETURNS mmsearch.space
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    dropped mmsearch.space;
BEGIN
    LOCK TABLE mmsearch.space IN SHARE ROW EXCLUSIVE MODE;
    DELETE FROM mmsearch.space WHERE name = p_name RETURNING * INTO dropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no space named "%"', p_name
            USING ERRCODE = '22023', HINT = 'SELECT name FROM mmsearch.space_registry;';
    END IF;
    -- The HNSW index goes with its column; the backfill_skip rows with the registry row.
    EXECUTE format('ALTER TABLE mmsearch.segment DROP COLUMN IF EXISTS %I', dropped.column_name);
    RETURN dropped;
END
$$;
REVOKE EXECUTE ON FUNCTION mmsearch.drop_space(text) FROM PUBLIC;
COMMENT ON FUNCTION mmsearch.drop_space(text) IS
    'Drop a named vector space: its registry row, segment.<name>_vec and its HNSW index. The '
    'column''s disk space returns as rows are rewritten (VACUUM FULL reclaims it at once).';

-- Segments carry their record's acl and collection so RLS and filters need no join.
CREATE OR REPLACE FUNCTION mmsearch.segment_inherit_record() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    SELECT r.acl, r.collection_id INTO NEW.acl, NEW.collection_id
    FROM mmsearch.record AS r WHERE r.id = NEW.record_id;
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION mmsearch.record_propagate_acl() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    UPDATE mmsearch.segment SET acl = NEW.acl WHERE record_id = NEW.id;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER segment_inherit_record
    BEFORE INSERT OR UPDATE OF record_id ON mmsearch.segment
    FOR EACH ROW EXECUTE FUNCTION mmsearch.segment_inherit_record();

CREATE OR REPLACE TRIGGER record_propagate_acl
    AFTER UPDATE OF acl ON mmsearch.record
    FOR EACH ROW WHEN (OLD.acl IS DISTINCT FROM NEW.acl)
    EXECUTE FUNCTION mmsearch.record_propagate_acl();

-- Transcripts carry the sound codes of their words (the search's sounds_like leg).
CREATE OR REPLACE FUNCTION mmsearch.segment_sound_codes() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    NEW.sound_tsv := CASE WHEN NEW.kind = 'transcript' THEN mmsearch.sound_codes(NEW.content) END;
    RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER segment_sound_codes
    BEFORE INSERT OR UPDATE OF content, kind ON mmsearch.segment
    FOR EACH ROW EXECUTE FUNCTION mmsearch.segment_sound_codes();
