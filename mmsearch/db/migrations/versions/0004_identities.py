"""Identities: the role prefix of this database, people's principals, ACLs on ingest errors.

- `install` holds the prefix of this database's role names (`mmsearch.db.roles`), fixed
  here so renaming the database later does not orphan its roles.
- `person` maps each person's login to the principals it sees with (maintained by the
  owner through `mmsearch user …`); `current_principals()` reads it by `session_user`.
- `ingest_error.acl`: the ACL the failed file would have had. Rows written before this
  revision get the record's ACL when there is one, else none (only the owner sees them).
- `pg_catalog.ts_match_vq` is no longer LEAKPROOF (an earlier `init` made it so).
- no planner statistics on the columns that carry content (they describe hidden rows too).
- `ingest_lock`: one row per (collection, uri) that an ingest locks while it writes; a row
  lock needs UPDATE rights, which only the ingest role has (an advisory lock anyone can take).

Revision ID: 0004_identities
Revises: 0003_space_backfill
Create Date: 2026-12-01
"""

from alembic import op

revision = "0004_identities"
down_revision = "0003_space_backfill"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE TABLE mmsearch.install (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    role_prefix text NOT NULL CHECK (role_prefix ~ '^[a-z0-9_]{1,32}$')
);
INSERT INTO mmsearch.install (role_prefix)
SELECT CASE WHEN d ~ '^[a-z_][a-z0-9_]{0,31}$' THEN d
            ELSE left(regexp_replace(lower(d), '[^a-z0-9_]+', '_', 'g'), 23) || '_'
                 || left(md5(d), 8) END
FROM current_database() AS d;

CREATE TABLE mmsearch.person (
    login      text PRIMARY KEY,
    name       text NOT NULL UNIQUE CHECK (name ~ '^[a-z][a-z0-9_]{0,29}$'),
    role       text NOT NULL CHECK (role IN ('analyst', 'bi')),
    principals text[] NOT NULL DEFAULT '{}'
               CHECK (cardinality(principals) <= 1000
                      AND array_to_string(principals, ' ')
                          ~ '^((public|(user|group):[A-Za-z0-9][A-Za-z0-9._@+\-]{0,199})( |$))*$'),
    created_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE mmsearch.ingest_error ADD COLUMN acl text[] NOT NULL DEFAULT '{}';
UPDATE mmsearch.ingest_error AS e SET acl = r.acl
FROM mmsearch.record AS r WHERE r.collection_id = e.collection_id AND r.uri = e.uri;
CREATE INDEX ingest_error_acl_idx ON mmsearch.ingest_error USING gin (acl);

-- Undo what `mmsearch init` did before this revision when run by a superuser (the default is
-- NOT LEAKPROOF): a LEAKPROOF full-text match let EXPLAIN ANALYZE count hidden rows.
DO $undo_leakproof$
BEGIN
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)
       AND (SELECT proleakproof FROM pg_catalog.pg_proc
            WHERE oid = 'pg_catalog.ts_match_vq(tsvector, tsquery)'::regprocedure) THEN
        ALTER FUNCTION pg_catalog.ts_match_vq(tsvector, tsquery) NOT LEAKPROOF;
    END IF;
END
$undo_leakproof$;

-- Planner statistics describe every row, hidden ones included, and PostgreSQL uses them for
-- estimates under RLS whenever the operator is LEAKPROOF (=, LIKE on text, array and jsonb
-- containment...) and, for tsvector @@ tsquery, always. EXPLAIN's row estimates would then
-- tell an analyst how common a title, a path, a tag or a word is in rows it may not see. The
-- columns that carry content keep no statistics: estimates on them fall back to PostgreSQL's
-- defaults. (Removing statistics gathered before needs a superuser; elsewhere they are never
-- refreshed.) Sizes, dates, media types, collections and ACLs keep theirs.
DO $no_content_statistics$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT * FROM (VALUES
        ('record', 'uri'), ('record', 'title'), ('record', 'tags'), ('record', 'metadata'),
        ('segment', 'content'), ('segment', 'content_tsv'), ('segment', 'metadata')
    ) AS t(tab, col)
    LOOP
        EXECUTE format('ALTER TABLE mmsearch.%I ALTER COLUMN %I SET STATISTICS 0', c.tab, c.col);
        IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
            DELETE FROM pg_catalog.pg_statistic AS s
            USING pg_catalog.pg_attribute AS a
            WHERE a.attrelid = format('mmsearch.%I', c.tab)::regclass AND a.attname = c.col
              AND s.starelid = a.attrelid AND s.staattnum = a.attnum;
        END IF;
    END LOOP;
END
$no_content_statistics$;

CREATE TABLE mmsearch.ingest_lock (
    collection_id integer NOT NULL REFERENCES mmsearch.collection (id) ON DELETE CASCADE,
    uri           text NOT NULL,
    PRIMARY KEY (collection_id, uri)
);
"""

DOWNGRADE = r"""
DROP TABLE mmsearch.ingest_lock;
ALTER TABLE mmsearch.record ALTER COLUMN uri SET STATISTICS -1,
    ALTER COLUMN title SET STATISTICS -1, ALTER COLUMN tags SET STATISTICS -1,
    ALTER COLUMN metadata SET STATISTICS -1;
ALTER TABLE mmsearch.segment ALTER COLUMN content SET STATISTICS -1,
    ALTER COLUMN content_tsv SET STATISTICS -1, ALTER COLUMN metadata SET STATISTICS -1;
ALTER TABLE mmsearch.ingest_error DROP COLUMN acl CASCADE;  -- and its policy
DROP TABLE mmsearch.person;
DROP TABLE mmsearch.install;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
