-- Group roles of this database (NOLOGIN), named "<prefix>.<kind>" (mmsearch/db/roles.py; the
-- prefix is mmsearch.install.role_prefix). Logins (the app's service login, the ingest login,
-- one per person) are created by mmsearch with generated passwords and join one group each.
-- Grants live in 030_security.sql.
--   :"role_app"      searches through the service login; RLS applies
--   :"role_ingest"   ingestion, through the writer login; sees and writes every row
--   :"role_analyst"  people: read-only SQL over tables, views and functions; RLS applies
--   :"role_bi"       people: metadata views only (no vectors, no content); RLS applies
--   :"role_views"    owns the metadata views, so BI needs no table grant; RLS applies
--   :"role_search"   may own SECURITY DEFINER search functions; reads every row (see 030)
DO $roles$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY[:'role_app', :'role_ingest', :'role_analyst', :'role_bi',
                             :'role_views', :'role_search']
    LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
        -- whatever someone did to it since: no login, no powers beyond its grants
        IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r
                   AND (rolcanlogin OR rolsuper OR rolcreatedb OR rolcreaterole
                        OR rolreplication OR rolbypassrls)) THEN
            EXECUTE format('ALTER ROLE %I NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE'
                           ' NOREPLICATION NOBYPASSRLS', r);
        END IF;
    END LOOP;
    -- A non-superuser owner must be able to hand objects to the roles that own them.
    IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('GRANT %I, %I TO %I', :'role_views', :'role_search', current_user);
    END IF;
END
$roles$;

-- Before roles were per database, every database shared mmsearch_app, mmsearch_ingest,
-- mmsearch_analyst and mmsearch_bi. They keep nothing here (another database may still use
-- them; drop them once none does).
DO $legacy$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['mmsearch_app', 'mmsearch_ingest', 'mmsearch_analyst', 'mmsearch_bi']
    LOOP
        IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA mmsearch FROM %I', r);
            EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA mmsearch FROM %I', r);
            EXECUTE format('REVOKE ALL ON ALL FUNCTIONS IN SCHEMA mmsearch FROM %I', r);
            EXECUTE format('REVOKE ALL ON SCHEMA mmsearch FROM %I', r);
        END IF;
    END LOOP;
END
$legacy$;
