-- Roles (cluster-wide, created once). Grants live in 030_security.sql.
--   mmsearch_app      searches run as this role (SET LOCAL ROLE); RLS applies
--   mmsearch_ingest   ingestion writes as this role; sees and writes every row
--   mmsearch_analyst  read-only SQL over tables, views and functions; RLS applies
--   mmsearch_bi       metadata views only: no vectors, no content; RLS applies
DO $roles$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM (VALUES
        ('mmsearch_app', false), ('mmsearch_ingest', false),
        ('mmsearch_analyst', true), ('mmsearch_bi', true)) AS t(name, login)
    LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r.name) THEN
            EXECUTE format('CREATE ROLE %I %s NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE',
                           r.name, CASE WHEN r.login THEN 'LOGIN' ELSE 'NOLOGIN' END);
        END IF;
    END LOOP;
    -- A non-superuser owner must be able to SET ROLE to the roles it hands work to.
    IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('GRANT mmsearch_app, mmsearch_ingest TO %I', current_user);
    END IF;
END
$roles$;
