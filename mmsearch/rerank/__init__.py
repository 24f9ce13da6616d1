"""A second stage over a search's top candidates: `rerank(query, hits, context) -> hits`.

The database returns candidates fast from what the index holds (one vector per segment);
a reranker looks at each of the first `depth` candidates more carefully and reorders them.
Rerankers are chosen by name with options (`[rerank]` in config.toml, see `load`):
"evidence", the offline default, re-scores with more evidence than the index holds (see
`mmsearch.rerank.evidence`; CLIP/CLAP checkpoints plug into it by configuration);
"cross-encoder" reads query and text together with a sentence-transformers cross-encoder.

Everything a reranker reads from the database it reads as the caller (`context.db.reader`
with the caller's principals), so row-level security bounds it exactly as it bounds search.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from mmsearch.db.engine import Database
    from mmsearch.embed.registry import Embedders
    from mmsearch.query.search import Hit


@dataclass(frozen=True)
class RerankContext:
    """What a reranker may use: the database (read as `principals`) and the spaces' models."""

    db: Database
    embedders: Embedders
    principals: tuple[str, ...] = ()


class Reranker(ABC):
    """Reorders the first `depth` hits of a search; hits after them keep their places."""

    name: ClassVar[str]

    def __init__(self, *, depth: int = 20) -> None:
        if depth < 1:
            raise ValueError("depth must be at least 1")
        self.depth = depth

    def rerank(self, query: str, hits: Sequence[Hit], context: RerankContext) -> list[Hit]:
        """The hits reordered best first; each moved hit's `ranks` gains its "rerank" rank."""
        head, tail = list(hits[: self.depth]), list(hits[self.depth :])
        if not query.strip() or len(head) < 2:
            return head + tail
        order = self.order(query, head, context)
        if sorted(order) != list(range(len(head))):
            raise ValueError(f"{type(self).__name__}.order must permute {len(head)} hits")
        reranked = [
            replace(head[i], ranks={**head[i].ranks, "rerank": place})
            for place, i in enumerate(order, 1)
        ]
        return reranked + tail

    @abstractmethod
    def order(self, query: str, hits: list[Hit], context: RerankContext) -> list[int]:
        """Indexes into `hits`, best first (a permutation of all of them)."""


RerankerFactory = Callable[..., Reranker]
_REGISTRY: dict[str, RerankerFactory] = {}


def register(name: str) -> Callable[[type[Reranker]], type[Reranker]]:
    """Class decorator: make a reranker selectable by `name` in configuration."""

    def wrap(cls: type[Reranker]) -> type[Reranker]:
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def load(spec: Mapping[str, Any] | None) -> Reranker | None:
    """The reranker a `[rerank]` table names (`name = "evidence"` plus its options), or
    None when the table is empty or says `name = "off"`."""
    options = dict(spec or {})
    name = options.pop("name", None)
    if name in (None, "off"):
        return None
    import mmsearch.rerank.cross_encoder
    import mmsearch.rerank.evidence  # noqa: F401  (their @register calls)

    if name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY))
        raise ValueError(f"unknown reranker {name!r} (known: {known}, off)")
    return _REGISTRY[name](**options)


def fuse_orders(first: Sequence[float | None], k: float = 10.0, weight: float = 1.0) -> list[int]:
    """A new order for hits that come ranked 0..n-1, given a second opinion per hit.

    Reciprocal rank fusion of the search's order and the order of `first` (higher is
    better; a hit without an opinion, None, keeps its search rank in the second list too,
    so it neither gains nor loses from the reranker's silence). Ties keep the search order.
    """
    opinions = {i: s for i, s in enumerate(first) if s is not None}
    second = {i: place for place, i in enumerate(sorted(opinions, key=lambda i: -opinions[i]))}
    fused = [1.0 / (k + i + 1) + weight / (k + second.get(i, i) + 1) for i in range(len(first))]
    return sorted(range(len(first)), key=lambda i: (-fused[i], i))
