"""Which embedder fills which space, built lazily: one load per model per process.

Spaces are configured by name (`config.SpaceSpec`: family + options). `Embedders` maps those
names to embedders and loads a model only when a space is first used; what a space can
encode is read from its family's class attributes, so choosing the spaces of a query loads
nothing. Instances are shared by every `Embedders` in the process (two clients, or six
threads doing their first search at once, load each model exactly once).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mmsearch.embed.base import Embedder, Modality, factory
from mmsearch.errors import UserError

if TYPE_CHECKING:
    from mmsearch.config import SpaceSpec

_instances: dict[str, Embedder] = {}
_loading: dict[str, threading.Lock] = {}
_guard = threading.Lock()


def shared_embedder(family: str, options: Mapping[str, Any] | None = None) -> Embedder:
    """The process-wide embedder of `family` with `options`, built on first use.

    A lock per (family, options) makes concurrent first uses wait for one load instead of
    each loading the model; different models still load in parallel.
    """
    key = json.dumps([family, dict(options or {})], sort_keys=True, default=str)
    with _guard:
        if key in _instances:
            return _instances[key]
        lock = _loading.setdefault(key, threading.Lock())
    with lock:
        if key not in _instances:
            built = factory(family)(**dict(options or {}))
            with _guard:
                _instances[key] = built
    return _instances[key]


class Embedders:
    """The embedders of the configured spaces, by space name."""

    def __init__(self, specs: Sequence[SpaceSpec]) -> None:
        self._specs = {spec.name: spec for spec in specs}

    def names(self) -> list[str]:
        return list(self._specs)

    def spec(self, name: str) -> SpaceSpec:
        try:
            return self._specs[name]
        except KeyError:
            known = ", ".join(self._specs) or "none"
            raise UserError(
                f"no space named {name!r} is configured (configured: {known})"
            ) from None

    def family(self, name: str) -> type[Embedder]:
        """The embedder class behind a space (its modalities), without loading the model."""
        built = factory(self.spec(name).family)
        if not isinstance(built, type):
            raise TypeError(f"embedder family of space {name!r} is not a class: {built!r}")
        return built

    def supporting(self, modality: Modality, *, query: bool = False) -> list[str]:
        """Spaces whose embedder takes `modality` (as a document, or as a query)."""
        return [
            name
            for name in self._specs
            if modality
            in (self.family(name).query_modalities if query else self.family(name).modalities)
        ]

    def get(self, name: str) -> Embedder:
        """The space's embedder, loading its model on first use."""
        spec = self.spec(name)
        return shared_embedder(spec.family, spec.options)
