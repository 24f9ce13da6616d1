"""SQLAlchemy ORM models of the core tables, for applications that want an ORM.

The schema is owned by the Alembic migrations; these classes mirror it (a test checks
they agree with the catalog). Vector columns are added per space at run time, so they
are not mapped here: `mmsearch.query` composes the SQL that reads them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Computed, Float, ForeignKey, Integer, Text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Collection(Base):
    __tablename__ = "collection"
    __table_args__ = ({"schema": "mmsearch"},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    #: the fusion a search of this collection alone uses unless it sets its own
    search_defaults: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


class SpaceRow(Base):
    __tablename__ = "space"
    __table_args__ = ({"schema": "mmsearch"},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    modalities: Mapped[list[str]] = mapped_column(ARRAY(Text))
    model_id: Mapped[str] = mapped_column(Text)
    revision: Mapped[str] = mapped_column(Text)
    dim: Mapped[int] = mapped_column(Integer)
    distance: Mapped[str] = mapped_column(Text)
    column_name: Mapped[str] = mapped_column(Text)
    options: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime]


class Record(Base):
    __tablename__ = "record"
    __table_args__ = ({"schema": "mmsearch"},)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("mmsearch.collection.id"))
    uri: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(Text)
    media_type: Mapped[str] = mapped_column(Text)
    mime: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    bytes: Mapped[int] = mapped_column(BigInteger)
    duration_s: Mapped[float | None] = mapped_column(Float)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB)
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text))
    acl: Mapped[list[str]] = mapped_column(ARRAY(Text))
    created_at: Mapped[datetime]
    ingested_at: Mapped[datetime]

    collection: Mapped[Collection] = relationship()
    segments: Mapped[list[Segment]] = relationship(
        back_populates="record", order_by="Segment.ordinal", passive_deletes=True
    )


class Segment(Base):
    __tablename__ = "segment"
    __table_args__ = ({"schema": "mmsearch"},)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("mmsearch.record.id", ondelete="CASCADE"))
    collection_id: Mapped[int] = mapped_column(Integer)
    ordinal: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(Text)
    start_s: Mapped[float | None] = mapped_column(Float)
    end_s: Mapped[float | None] = mapped_column(Float)
    char_start: Mapped[int | None] = mapped_column(Integer)
    char_end: Mapped[int | None] = mapped_column(Integer)
    content: Mapped[str | None] = mapped_column(Text)
    content_tsv: Mapped[Any] = mapped_column(
        TSVECTOR, Computed("to_tsvector('english'::regconfig, coalesce(content, ''))")
    )
    #: transcripts: the sound codes of their words (trigger segment_sound_codes)
    sound_tsv: Mapped[Any | None] = mapped_column(TSVECTOR)
    acl: Mapped[list[str]] = mapped_column(ARRAY(Text))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB)

    record: Mapped[Record] = relationship(back_populates="segments")


class IngestError(Base):
    __tablename__ = "ingest_error"
    __table_args__ = ({"schema": "mmsearch"},)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    collection_id: Mapped[int | None] = mapped_column(ForeignKey("mmsearch.collection.id"))
    uri: Mapped[str] = mapped_column(Text)
    stage: Mapped[str] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime]
    #: the ACL the file would have had: who may see that it failed (RLS)
    acl: Mapped[list[str]] = mapped_column(ARRAY(Text))


class BackfillSkip(Base):
    """A segment a space's backfill could not embed, and why (`mmsearch space backfill`)."""

    __tablename__ = "backfill_skip"
    __table_args__ = ({"schema": "mmsearch"},)

    space_id: Mapped[int] = mapped_column(
        ForeignKey("mmsearch.space.id", ondelete="CASCADE"), primary_key=True
    )
    segment_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime]
