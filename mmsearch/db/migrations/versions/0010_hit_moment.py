"""A hit's moment: the span of its record that the search found around it.

A video's shot, the sentence said over it and the text read off its frame are separate
segments; a search that finds several of them side by side has found one moment. Each hit
now carries `moment_start_s`/`moment_end_s` beside its own segment's `start_s`/`end_s`
(047_search_core.sql, `search_moment_sql`).

Revision ID: 0010_hit_moment
Revises: 0009_spelled_like
Create Date: 2026-12-02
"""

from alembic import op

revision = "0010_hit_moment"
down_revision = "0009_spelled_like"
branch_labels = None
depends_on = None


UPGRADE = """
ALTER TYPE mmsearch.search_hit ADD ATTRIBUTE moment_start_s double precision,
    ADD ATTRIBUTE moment_end_s double precision;
COMMENT ON TYPE mmsearch.search_hit IS
    'One search result: a record represented by its best segment (or one segment with '
    'segments => true), its fused score, a snippet, its rank and score in each leg, and, in '
    'time-coded media, its moment: the span of the segments of its record that the search '
    'also found side by side with it.';
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(
        "ALTER TYPE mmsearch.search_hit DROP ATTRIBUTE moment_end_s, DROP ATTRIBUTE moment_start_s"
    )
