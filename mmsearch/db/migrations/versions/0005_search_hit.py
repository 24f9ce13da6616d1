"""The row type of a search hit, shared by every search function.

`mmsearch.search` (what the Python API calls), `mmsearch.search_request` and the analyst
functions built on them return `SETOF mmsearch.search_hit`, so the shape of a hit is
written once.

Revision ID: 0005_search_hit
Revises: 0004_identities
Create Date: 2026-11-29
"""

from alembic import op

revision = "0005_search_hit"
down_revision = "0004_identities"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TYPE mmsearch.search_hit AS (
    record_id   bigint,
    collection  text,
    uri         text,
    title       text,
    media_type  text,
    segment_id  bigint,
    kind        text,
    start_s     double precision,
    end_s       double precision,
    char_start  integer,
    char_end    integer,
    score       double precision,
    snippet     text,
    ranks       jsonb,
    leg_scores  jsonb
);
COMMENT ON TYPE mmsearch.search_hit IS
    'One search result: a record represented by its best segment (or one segment with '
    'segments => true), its fused score, a snippet, and its rank and score in each leg.';
"""

DOWNGRADE = "DROP TYPE IF EXISTS mmsearch.search_hit CASCADE;"


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
