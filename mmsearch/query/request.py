"""The options of a search, checked the moment they are given.

`SearchOptions` holds everything `Client.search` takes besides the query itself. It is a
frozen, keyword-only dataclass, so a misspelt option is a `TypeError` naming it, and its
checks run on construction: a value of the wrong type is a `TypeError`, a string where a
list is expected is one item (never its characters), NaN or infinite weights are refused.
Ranges (k, rrf_k, weights >= 0, query length) are checked once, by the SQL search itself
(`mmsearch.search_checked`), whose one-line messages come back as `UserError`s.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from mmsearch.errors import UserError
from mmsearch.query.expression import parse
from mmsearch.query.filters import Filters

Mode = Literal["hybrid", "vector", "keyword"]
MODES: tuple[Mode, ...] = ("hybrid", "vector", "keyword")
#: how a vector leg ranks: decided from real counts ("auto"), or forced
VectorPath = Literal["auto", "exact", "hnsw"]
#: how the legs' hits combine: scores on a 0..1 scale ("relative") or reciprocal ranks ("rrf")
Fusion = Literal["relative", "rrf"]
FUSIONS: tuple[Fusion, ...] = ("relative", "rrf")
#: where the sounds_like leg looks for words that sound like the query's: transcripts
#: ("speech"), every segment's text ("all"), or nowhere ("off")
SoundsLike = Literal["speech", "all", "off"]
SOUNDS_LIKE: tuple[SoundsLike, ...] = ("speech", "all", "off")


@dataclass(frozen=True, kw_only=True)
class SearchOptions:
    """How to search: filters, legs, fusion and result shape (see `Client.search`)."""

    collection: str | Sequence[str] | None = None
    media_types: str | Sequence[str] | None = None
    tags: str | Sequence[str] | None = None
    tags_all: str | Sequence[str] | None = None
    metadata: Mapping[str, Any] | None = None
    filter: str | None = None
    mode: Mode = "hybrid"
    principals: str | Sequence[str] | None = None
    k: int = 10
    weights: Mapping[str, float] | None = None
    rrf_k: int = 60
    #: None: the collection's own (`mmsearch eval --tune --apply`), else "relative"
    fusion: Fusion | None = None
    segments: bool = False
    #: None: "speech" (transcripts)
    sounds_like: SoundsLike | None = None
    spaces: str | Sequence[str] | None = None
    ef_search: int | None = None
    vector_path: VectorPath = "auto"
    #: the parsed filters (fixed fields and the `filter` expression), built on construction
    filters: Filters = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("collection", "media_types", "tags", "tags_all", "principals", "spaces"):
            object.__setattr__(self, name, _strings(getattr(self, name), name))
        for name in ("k", "rrf_k", "ef_search"):
            _integer(getattr(self, name), name, optional=name == "ef_search")
        if not isinstance(self.segments, bool):
            raise TypeError(f"segments must be True or False, not {self.segments!r}")
        if self.mode not in MODES:
            raise UserError(f"unknown mode {self.mode!r}: use hybrid, vector or keyword")
        if self.fusion is not None and self.fusion not in FUSIONS:
            raise UserError(f"unknown fusion {self.fusion!r}: use relative or rrf")
        if self.sounds_like is not None and self.sounds_like not in SOUNDS_LIKE:
            raise UserError(f"unknown sounds_like {self.sounds_like!r}: use speech, all or off")
        if self.filter is not None and not isinstance(self.filter, str):
            raise TypeError(f"filter must be an expression string, not {type(self.filter)}")
        if self.metadata is not None and not isinstance(self.metadata, Mapping):
            raise TypeError(f"metadata must be a mapping, not {type(self.metadata).__name__}")
        object.__setattr__(self, "weights", _weights(self.weights))
        object.__setattr__(self, "filters", self._filters())

    def _filters(self) -> Filters:
        filters = Filters(
            collections=tuple(self.collection or ()),
            media_types=tuple(self.media_types or ()),
            tags_any=tuple(self.tags or ()),
            tags_all=tuple(self.tags_all or ()),
            metadata=dict(self.metadata or {}),
        )
        return filters if self.filter is None else filters.also(parse(self.filter))

    def request(self) -> dict[str, Any]:
        """The fields of a search request (`mmsearch.search_request`) these options set."""
        fields: dict[str, Any] = {
            **self.filters.request(),
            "k": self.k,
            "rrf_k": self.rrf_k,
            "fusion": self.fusion,
            "sounds_like": self.sounds_like,
            "segments": self.segments,
            "weights": dict(self.weights or {}) or None,
            "ef_search": self.ef_search,
            "vector_path": self.vector_path,
        }
        return {key: value for key, value in fields.items() if value is not None}


def _strings(value: object, name: str) -> tuple[str, ...]:
    """None, one string, or a sequence of strings, as a tuple; anything else is a TypeError."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise TypeError(f"{name} must be a string or a sequence of strings, not {value!r}")


def _integer(value: object, name: str, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {value!r}")


def _weights(value: object) -> dict[str, float]:
    """Leg name -> finite number (JSON, and so the database, cannot hold NaN or infinity)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"weights must be a mapping of leg name to number, not {value!r}")
    checked: dict[str, float] = {}
    for leg, weight in value.items():
        if (
            not isinstance(leg, str)
            or isinstance(weight, bool)
            or not isinstance(weight, int | float)
        ):
            raise TypeError(f"weights map leg names to numbers, not {leg!r}: {weight!r}")
        if not math.isfinite(weight):
            raise UserError(f"the weight of {leg!r} must be a finite number, not {weight}")
        checked[leg] = float(weight)
    return checked


def parse_weights(pairs: Iterable[str]) -> dict[str, float]:
    """`LEG=W` pairs (the CLI's `--weight`, the HTTP API's `weight`) as a dict; a malformed
    pair is a one-line user error."""
    weights: dict[str, float] = {}
    for pair in pairs:
        leg, sep, value = pair.partition("=")
        try:
            weights[leg.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not leg.strip() or weights[leg.strip()] < 0:
            raise UserError(f"--weight expects LEG=WEIGHT with WEIGHT >= 0, got {pair!r}")
    return weights
