"""Core schema: collection, space, record, segment, ingest_error.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE EXTENSION IF NOT EXISTS vector;
CREATE SCHEMA IF NOT EXISTS mmsearch;

CREATE TABLE mmsearch.collection (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE
                CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
    description text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE mmsearch.space (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (name ~ '^[a-z][a-z0-9_]{0,39}$'),
    modalities  text[] NOT NULL
                CHECK (cardinality(modalities) > 0
                       AND modalities <@ ARRAY['text','image','audio','video']),
    model_id    text NOT NULL CHECK (model_id <> ''),
    revision    text NOT NULL DEFAULT '',
    dim         integer NOT NULL CHECK (dim BETWEEN 1 AND 16000),
    distance    text NOT NULL CHECK (distance IN ('cosine', 'ip', 'l2')),
    column_name text NOT NULL UNIQUE,
    options     jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE mmsearch.record (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    collection_id integer NOT NULL REFERENCES mmsearch.collection (id) ON DELETE CASCADE,
    uri           text NOT NULL CHECK (uri <> ''),
    sha256        text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    media_type    text NOT NULL CHECK (media_type IN ('text', 'image', 'audio', 'video')),
    mime          text NOT NULL,
    title         text NOT NULL DEFAULT '',
    bytes         bigint NOT NULL CHECK (bytes >= 0),
    duration_s    double precision CHECK (duration_s >= 0),
    width         integer CHECK (width > 0),
    height        integer CHECK (height > 0),
    metadata      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    tags          text[] NOT NULL DEFAULT '{}',
    acl           text[] NOT NULL DEFAULT '{public}' CHECK (cardinality(acl) > 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    ingested_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (collection_id, uri)
);
CREATE INDEX record_media_type_idx ON mmsearch.record (collection_id, media_type);
CREATE INDEX record_ingested_at_idx ON mmsearch.record (ingested_at);
CREATE INDEX record_sha256_idx ON mmsearch.record (sha256);
CREATE INDEX record_tags_idx ON mmsearch.record USING gin (tags);
CREATE INDEX record_metadata_idx ON mmsearch.record USING gin (metadata jsonb_path_ops);
CREATE INDEX record_acl_idx ON mmsearch.record USING gin (acl);

CREATE TABLE mmsearch.segment (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    record_id     bigint NOT NULL REFERENCES mmsearch.record (id) ON DELETE CASCADE,
    collection_id integer NOT NULL,
    ordinal       integer NOT NULL CHECK (ordinal >= 0),
    kind          text NOT NULL
                  CHECK (kind IN ('chunk', 'image', 'window', 'shot', 'transcript', 'ocr')),
    start_s       double precision CHECK (start_s >= 0),
    end_s         double precision CHECK (end_s >= start_s),
    char_start    integer CHECK (char_start >= 0),
    char_end      integer CHECK (char_end >= char_start),
    content       text,
    content_tsv   tsvector GENERATED ALWAYS AS
                  (to_tsvector('english'::regconfig, coalesce(content, ''))) STORED,
    acl           text[] NOT NULL DEFAULT '{public}',
    metadata      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    UNIQUE (record_id, ordinal)
);
CREATE INDEX segment_collection_idx ON mmsearch.segment (collection_id, kind);
CREATE INDEX segment_time_idx ON mmsearch.segment (record_id, start_s, end_s);
CREATE INDEX segment_tsv_idx ON mmsearch.segment USING gin (content_tsv);
CREATE INDEX segment_acl_idx ON mmsearch.segment USING gin (acl);

CREATE TABLE mmsearch.ingest_error (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    collection_id integer REFERENCES mmsearch.collection (id) ON DELETE CASCADE,
    uri           text NOT NULL,
    stage         text NOT NULL,
    message       text NOT NULL,
    at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ingest_error_uri_idx ON mmsearch.ingest_error (collection_id, uri);
"""

DOWNGRADE = "DROP SCHEMA IF EXISTS mmsearch CASCADE;"


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
