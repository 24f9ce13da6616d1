"""Backfill bookkeeping: segments a space's backfill could not embed, and why.

Revision ID: 0002_space_backfill
Revises: 0001
Create Date: 2026-12-01
"""

from alembic import op

revision = "0002_space_backfill"
down_revision = "0001"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE TABLE mmsearch.backfill_skip (
    space_id   integer NOT NULL REFERENCES mmsearch.space (id) ON DELETE CASCADE,
    segment_id bigint NOT NULL REFERENCES mmsearch.segment (id) ON DELETE CASCADE,
    reason     text NOT NULL CHECK (reason <> ''),
    at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (space_id, segment_id)
);
CREATE INDEX backfill_skip_segment_idx ON mmsearch.backfill_skip (segment_id);
COMMENT ON TABLE mmsearch.backfill_skip IS
    'Segments that `mmsearch space backfill` left without a vector in a space, with the reason '
    '(e.g. the source file changed since ingest). A re-ingest replaces the segments, and the '
    'rows go with them; dropping the space drops its rows.';
"""

DOWNGRADE = "DROP TABLE mmsearch.backfill_skip;"


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
