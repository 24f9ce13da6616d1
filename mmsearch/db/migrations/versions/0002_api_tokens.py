"""API tokens of the HTTP service: stored hashed, readable only by their owner.

No role but the owner has any privilege on the table and RLS is on with no policy, so a
grant added by mistake still shows nothing. The service resolves a token through
`mmsearch.api_token_principals(sha256)` (SECURITY DEFINER, in the sql folder).

Revision ID: 0002_api_tokens
Revises: 0001
Create Date: 2026-12-01
"""

from alembic import op

revision = "0002_api_tokens"
down_revision = "0001"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE TABLE mmsearch.api_token (
    id            integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.@-]{0,62}$'),
    token_sha256  bytea NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
    principals    text[] NOT NULL CHECK (cardinality(principals) > 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz
);
REVOKE ALL ON mmsearch.api_token FROM PUBLIC;
ALTER TABLE mmsearch.api_token ENABLE ROW LEVEL SECURITY;
COMMENT ON TABLE mmsearch.api_token IS
    'HTTP API tokens: SHA-256 of the token (never the token), its principals, last use.';
"""

DOWNGRADE = r"""
DROP FUNCTION IF EXISTS mmsearch.api_token_principals(bytea);
DROP TABLE IF EXISTS mmsearch.api_token;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
