"""Sounds like: the Double Metaphone codes of transcript words, indexed.

Whisper writes a name or a rare word one way ("Steven", "undeluted"), the person searching
types it another ("Stephen", "undeleted"). Both sound alike, and PostgreSQL's own
`fuzzystrmatch` says so: `dmetaphone` gives both the same code (STFN, ANTL). The search's
`sounds_like` leg (047_search_core.sql) matches the codes of the query's words against
those of a segment's words through this GIN index over transcripts.

The functions live here, not in the SQL files that are re-applied on upgrade: an index
depends on them, and a change to them is a change of the index (a new migration that
re-creates both).

Revision ID: 0008_sounds_like
Revises: 0007_collection_search_defaults
Create Date: 2026-12-02
"""

from alembic import op

revision = "0008_sounds_like"
down_revision = "0007_collection_search_defaults"
branch_labels = None
depends_on = None

UPGRADE = r"""
-- in public, beside pgvector (a login named like the schema would otherwise get it there)
CREATE EXTENSION IF NOT EXISTS fuzzystrmatch WITH SCHEMA public;

-- The words of a text that full-text search keeps (no stop words, no numbers), each with its
-- lexeme and its Double Metaphone code. A one-letter code says too little ("knee", "new" and
-- "now" are all N) and is left out; two letters stay ("media" and "mode" are both MT, yet
-- leaving them out lost 0.012 keyword MRR on text-speech and 0.036 on text-video).
CREATE FUNCTION mmsearch.sound_words(content text) RETURNS TABLE (lexeme text, code text)
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, public
AS $fn$
    SELECT d.lexemes[1], c.code
    FROM pg_catalog.ts_debug('english'::regconfig, content) AS d
    CROSS JOIN LATERAL (SELECT dmetaphone(d.token) AS code) AS c
    WHERE d.alias IN ('asciiword', 'word', 'hword_asciipart', 'hword_part')
      AND cardinality(d.lexemes) > 0 AND length(c.code) > 1
$fn$;
COMMENT ON FUNCTION mmsearch.sound_words(text) IS
    'The words of a text that full-text search keeps, each with its lexeme (english) and its '
    'Double Metaphone code (fuzzystrmatch.dmetaphone; codes of one letter left out).';

-- A text's sound codes as a tsvector, one entry per word (how often a code is said counts).
CREATE FUNCTION mmsearch.sound_codes(content text) RETURNS tsvector
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, public
AS $fn$
    SELECT to_tsvector('simple'::regconfig, coalesce(string_agg(w.code, ' '), ''))
    FROM mmsearch.sound_words(content) AS w
$fn$;
COMMENT ON FUNCTION mmsearch.sound_codes(text) IS
    'The Double Metaphone codes of a text''s words as a tsvector (what the sounds_like leg '
    'matches; indexed for transcripts by segment_sound_idx).';

CREATE INDEX segment_sound_idx ON mmsearch.segment
    USING gin (mmsearch.sound_codes(content)) WHERE kind = 'transcript';
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(
        "DROP INDEX mmsearch.segment_sound_idx;"
        " DROP FUNCTION mmsearch.sound_codes(text);"
        " DROP FUNCTION mmsearch.sound_words(text)"
    )
