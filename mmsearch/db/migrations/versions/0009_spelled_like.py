"""Spelled like: a trigram index over text read off pictures.

OCR misreads and glues words ("WEEKmedia", "DEICES.DIROUITS"), so a typed word often has
no exact match in it. `pg_trgm` (shipped with PostgreSQL) measures how much of a word's
trigrams a stretch of text shares; the search's `spelled_like` leg (047_search_core.sql)
finds OCR segments holding something close to a query word through this index.

Revision ID: 0009_spelled_like
Revises: 0008_sounds_like
Create Date: 2026-12-02
"""

from alembic import op

revision = "0009_spelled_like"
down_revision = "0008_sounds_like"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;"
        " CREATE INDEX segment_ocr_trgm_idx ON mmsearch.segment"
        " USING gin (content gin_trgm_ops) WHERE kind = 'ocr'"
    )


def downgrade() -> None:
    op.execute("DROP INDEX mmsearch.segment_ocr_trgm_idx")
