"""Backfill bookkeeping: segments a space's backfill could not embed, and why.

Revision ID: 0003_space_backfill
Revises: 0002_api_tokens
Create Date: 2026-12-01
"""

from alembic import op

revision = "0003_space_backfill"
down_revision = "0002_api_tokens"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE TABLE mmsearch.backfill_skip (
    space_id   integer NOT NULL REFERENCES mmsearch.space (id) ON DELETE CASCADE,
    segment_id bigint NOT NULL,
    reason     text NOT NULL CHECK (reason <> ''),
    at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (space_id, segment_id)
);
COMMENT ON TABLE mmsearch.backfill_skip IS
    'Segments that `mmsearch space backfill` left without a vector in a space, with the reason '
    '(e.g. the source file changed since ingest). No foreign key to segment: under Citus this '
    'is a reference table and segment a distributed one. Segment ids are never reused, so a '
    'row whose segment is gone (removed, or replaced by a re-ingest) matches nothing; the next '
    'backfill clears such rows. Dropping the space drops its rows.';
"""

DOWNGRADE = "DROP TABLE mmsearch.backfill_skip;"


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
