"""Which SQL files the database's functions, policies and views came from.

The SQL files (`mmsearch/db/sql`) are applied after every migration, but a new release may
change them without a new migration. `mmsearch.install.sql_digest` holds the digest of the
files last applied, so connecting with a newer package re-applies them (`schema.ensure`).

Revision ID: 0006_sql_digest
Revises: 0005_search_hit
Create Date: 2026-12-01
"""

from alembic import op

revision = "0006_sql_digest"
down_revision = "0005_search_hit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE mmsearch.install ADD COLUMN sql_digest text")


def downgrade() -> None:
    op.execute("ALTER TABLE mmsearch.install DROP COLUMN sql_digest")
