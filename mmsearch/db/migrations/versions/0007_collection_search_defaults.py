"""A collection's own fusion: what `mmsearch eval --tune --apply` chose from judged queries.

`search_defaults` holds `{"fusion": "relative"|"rrf", "weights": {leg: w}}`; a search of
that one collection that does not set them itself uses them (`mmsearch.search_checked`).

Revision ID: 0007_collection_search_defaults
Revises: 0006_sql_digest
Create Date: 2026-12-01
"""

from alembic import op

revision = "0007_collection_search_defaults"
down_revision = "0006_sql_digest"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
ALTER TABLE mmsearch.collection ADD COLUMN search_defaults jsonb NOT NULL DEFAULT '{}'
    CHECK (jsonb_typeof(search_defaults) = 'object'
           AND search_defaults - 'fusion' - 'weights' = '{}'
           AND coalesce(search_defaults ->> 'fusion', 'relative') IN ('relative', 'rrf')
           AND jsonb_typeof(coalesce(search_defaults -> 'weights', '{}')) = 'object')
"""
    )


def downgrade() -> None:
    op.execute("ALTER TABLE mmsearch.collection DROP COLUMN search_defaults")
