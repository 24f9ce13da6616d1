"""What the HTTP routes do, without HTTP: search as a caller, shape hits, report status.

One `Service` holds one `Client` (one pool, each model loaded once at start) for the
process. Every read goes through `Database.reader(principals)`: RLS decides visibility.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_origin

from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict, Field

import mmsearch
from mmsearch.api.auth import Authenticator, Caller, ProxyTrust
from mmsearch.api.files import MediaFiles
from mmsearch.errors import UserError

if TYPE_CHECKING:
    from mmsearch.client import Client
    from mmsearch.query.search import Hit

BIGINT_MAX = 2**63 - 1
#: hits of these media types have a picture to show (a keyframe or the image itself)
PICTURED = ("image", "video")


class SearchParams(BaseModel):
    """The options of `GET /api/search` (query string) and `POST /api/search` (JSON body)."""

    model_config = ConfigDict(extra="forbid")

    q: str | None = Field(None, description="Text to search for.")
    like: int | None = Field(None, ge=1, le=BIGINT_MAX, description="More like this segment id.")
    collection: list[str] = Field([], description="Repeatable.")
    media_type: list[Literal["text", "image", "audio", "video"]] = Field(
        [], description="Repeatable."
    )
    tag: list[str] = Field([], description="Records with any of these tags; repeatable.")
    filter: str | None = Field(None, description="Filter expression, e.g. meta.year >= 2020.")
    mode: Literal["hybrid", "vector", "keyword"] = "hybrid"
    k: int = Field(10, ge=1, le=1000)
    segments: bool = Field(False, description="Every matching segment, not one per record.")
    weight: list[str] = Field([], description="LEG=W, the weight of a leg in the fusion.")
    fusion: Literal["relative", "rrf"] | None = Field(
        None,
        description="How legs combine: 0..1 scores, or reciprocal ranks"
        " (default: the collection's own, else relative).",
    )
    sounds_like: Literal["speech", "all", "off"] | None = Field(
        None,
        description="Where words that sound like the query's count: transcripts (default),"
        " every segment's text, or nowhere.",
    )
    space: list[str] = Field(
        [],
        description="Only these vector spaces' legs (repeatable; default: every space that"
        " encodes the query).",
    )
    principal: list[str] = Field(
        [], description="Search as these principals: only with the server's local key."
    )

    def options(self, caller: Caller) -> dict[str, Any]:
        """Keyword arguments of `Client.search`, with the principals the caller runs as."""
        from mmsearch.query.request import parse_weights

        return {
            "collection": self.collection,
            "media_types": list(self.media_type),
            "tags": self.tag,
            "filter": self.filter,
            "mode": self.mode,
            "principals": caller.principals_for(self.principal),
            "k": self.k,
            "segments": self.segments,
            "weights": parse_weights(self.weight),
            "fusion": self.fusion,
            "sounds_like": self.sounds_like,
            "spaces": self.space or None,
        }


#: parameters that may repeat in a query string
LIST_PARAMS = frozenset(
    name for name, info in SearchParams.model_fields.items() if get_origin(info.annotation) is list
)


class Service:
    """The models, the pool, the files and who may call: everything the routes share."""

    def __init__(
        self,
        client: Client,
        *,
        local_key: str | None = None,
        proxy: ProxyTrust | None = None,
        max_upload_bytes: int = 64 << 20,
    ) -> None:
        self.client = client
        self.authenticate = Authenticator(client.db, local_key=local_key, proxy=proxy)
        settings = client.settings
        self.files = MediaFiles(settings.home, max_image_pixels=settings.max_image_pixels)
        self.max_upload_bytes = max_upload_bytes

    def warm(self) -> None:
        """Load every configured model now, so no request pays for a load (or races one)."""
        for spec in self.client.settings.spaces:
            embedder = self.client.embedder(spec.name)
            if embedder.supports("text", query=True):
                embedder.encode_texts(["warm up"], query=True)  # first inference is slower

    def search(
        self, caller: Caller, subject: str | Path | int, params: SearchParams, base: str
    ) -> list[dict[str, Any]]:
        hits = self.client.search(subject, **params.options(caller))
        return [hit_json(hit, base) for hit in hits]

    def status(self, caller: Caller) -> dict[str, Any]:
        """Versions, spaces and the collections as the caller sees them (RLS counts)."""
        with self.client.db.reader(caller.principals) as conn:
            postgres, pgvector = conn.execute(
                "SELECT current_setting('server_version'),"
                " (SELECT extversion FROM pg_extension WHERE extname = 'vector')"
            ).fetchone()
            with conn.cursor(row_factory=dict_row) as cur:
                cur.execute(
                    "SELECT collection, records, text_records, image_records, audio_records,"
                    " video_records FROM mmsearch.collection_stats ORDER BY collection"
                )
                collections = cur.fetchall()
        spaces = [
            {"name": s.name, "modalities": list(s.modalities), "model": s.model_id, "dim": s.dim}
            for s in self.client.spaces()
        ]
        return {
            "mmsearch": mmsearch.__version__,
            "postgres": postgres,
            "pgvector": pgvector,
            "spaces": spaces,
            "collections": collections,
            "principals": list(caller.principals),
            "may_choose_principals": caller.may_choose_principals,
        }


def hit_json(hit: Hit, base: str) -> dict[str, Any]:
    """A hit as `search --json` prints it, plus where to fetch its media and picture."""
    shaped = hit.as_dict()
    shaped["media_url"] = f"{base}/api/records/{hit.record_id}/media"
    shaped["thumbnail_url"] = (
        f"{base}/api/segments/{hit.segment_id}/thumbnail" if hit.media_type in PICTURED else None
    )
    return shaped


def subject_of(params: SearchParams, example: Path | None) -> str | Path | int:
    """Exactly one of: the text `q`, the segment `like`, an example file."""
    given = [s for s in (params.q, params.like, example) if s is not None]
    if len(given) != 1:
        raise UserError("give one of: q (text), like (a segment id), or an example file")
    return given[0]
