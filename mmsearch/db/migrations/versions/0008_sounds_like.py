"""Sounds like: the Double Metaphone codes of transcript words, in their own tsvector.

Whisper writes a name or a rare word one way ("Kathryn", "undeluted"), the person searching
types it another ("Catherine", "undeleted"). Both sound alike, and PostgreSQL's own
`fuzzystrmatch` says so: `dmetaphone` gives both the same code (K0RN, ANTL). The search's
`sounds_like` leg (047_search_core.sql) matches the codes of the query's words against
`segment.sound_tsv`, kept for transcripts by a trigger (020_functions.sql) and indexed.

A column, not an expression index: the leg reads each match's codes (their number and
frequencies, for BM25), and recomputing them per match cost 0.2 s a search at 20,000
transcripts. The functions live here, not in the SQL files that are re-applied on upgrade:
stored codes depend on them, and a change to them is a change of the data (a new migration
that recomputes it).

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

-- The distinct words of a text that full-text search keeps (no stop words, no numbers), each
-- as written (lowercase), with its lexeme (english) and how often it is said. The search's
-- approximate legs take a query's words from here too.
CREATE FUNCTION mmsearch.text_words(content text)
RETURNS TABLE (word text, lexeme text, said integer)
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog
AS $fn$
    SELECT u.lexeme, w.stem[1], cardinality(u.positions)
    FROM unnest(to_tsvector('simple'::regconfig, content)) AS u
    CROSS JOIN LATERAL (SELECT ts_lexize('english_stem', u.lexeme) AS stem) AS w
    WHERE u.lexeme ~ '^[[:alpha:]]+$' AND cardinality(w.stem) > 0
$fn$;
COMMENT ON FUNCTION mmsearch.text_words(text) IS
    'The distinct words of a text that full-text search keeps: each as written (lowercase), '
    'its lexeme (english) and how often it is said.';

-- Those words' Double Metaphone codes. Codes under three letters are left out: they say
-- little ("media", "mode", "mute" and "made" are all MT; "known" and "none" both NN) and
-- match a third of a collection's transcripts, which cost a search 60 ms at the 95th
-- percentile (20,000 transcripts of 100,000 segments) for 0.012 keyword MRR on text-speech
-- and 0.036 on text-video (hybrid did not move).
CREATE FUNCTION mmsearch.sound_words(content text)
RETURNS TABLE (lexeme text, code text, said integer)
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, public
AS $fn$
    SELECT t.lexeme, c.code, t.said
    FROM mmsearch.text_words(content) AS t
    CROSS JOIN LATERAL (SELECT dmetaphone(t.word) AS code) AS c
    WHERE length(c.code) > 2
$fn$;
COMMENT ON FUNCTION mmsearch.sound_words(text) IS
    'The words of mmsearch.text_words with their Double Metaphone code '
    '(fuzzystrmatch.dmetaphone; codes under three letters left out): lexeme, code, how often '
    'it is said.';

-- A text's sound codes as a tsvector, each as often as its words are said (lowercase).
CREATE FUNCTION mmsearch.sound_codes(content text) RETURNS tsvector
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, public
AS $fn$
    SELECT to_tsvector('simple'::regconfig, coalesce(string_agg(repeat(w.code || ' ', w.said),
                                                                ''), ''))
    FROM mmsearch.sound_words(content) AS w
$fn$;
COMMENT ON FUNCTION mmsearch.sound_codes(text) IS
    'The Double Metaphone codes of a text''s words as a tsvector (what the sounds_like leg '
    'matches; kept for transcripts in segment.sound_tsv).';

ALTER TABLE mmsearch.segment ADD COLUMN sound_tsv tsvector;
COMMENT ON COLUMN mmsearch.segment.sound_tsv IS
    'Transcripts: the Double Metaphone codes of their words (mmsearch.sound_codes), kept by '
    'the segment_sound_codes trigger; NULL for every other kind.';
-- content, so no planner statistics (0004_identities: they describe hidden rows too)
ALTER TABLE mmsearch.segment ALTER COLUMN sound_tsv SET STATISTICS 0;
UPDATE mmsearch.segment SET sound_tsv = mmsearch.sound_codes(content) WHERE kind = 'transcript';
CREATE INDEX segment_sound_idx ON mmsearch.segment USING gin (sound_tsv);
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(
        "DROP TRIGGER IF EXISTS segment_sound_codes ON mmsearch.segment;"
        " DROP FUNCTION IF EXISTS mmsearch.segment_sound_codes();"
        " ALTER TABLE mmsearch.segment DROP COLUMN sound_tsv;"
        " DROP FUNCTION mmsearch.sound_codes(text);"
        " DROP FUNCTION mmsearch.sound_words(text);"
        " DROP FUNCTION mmsearch.text_words(text)"
    )
