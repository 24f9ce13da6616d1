"""The embedder registry: a model loads once per process, even when threads race for it.

A counting family stands in for a model here only to count constructions (it claims no
semantic behaviour); the real models go through exactly this code.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar

import numpy as np
import pytest

from mmsearch.config import SpaceSpec
from mmsearch.embed import base
from mmsearch.embed.base import Embedder, Modality
from mmsearch.embed.registry import Embedders, shared_embedder


class _Counting(Embedder):
    model_id = "counting"
    modalities: ClassVar[frozenset[Modality]] = frozenset({"audio"})
    query_modalities: ClassVar[frozenset[Modality]] = frozenset({"audio"})
    dim: ClassVar[int] = 2
    built: ClassVar[int] = 0
    lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, **options: object) -> None:
        time.sleep(0.2)  # a slow load: every racing thread is inside get() meanwhile
        with self.lock:
            type(self).built += 1

    def encode_audio(self, clips: Sequence[np.ndarray], sample_rate: int) -> np.ndarray:
        return np.ones((len(clips), 2), np.float32)


@pytest.fixture
def counting() -> Iterator[str]:
    name = f"test-counting-{time.monotonic_ns()}"
    base.register(name)(_Counting)
    _Counting.built = 0
    yield name
    base._REGISTRY.pop(name, None)


def test_six_threads_racing_for_a_first_use_load_the_model_once(counting: str) -> None:
    embedders = Embedders([SpaceSpec("noise", counting)])
    with ThreadPoolExecutor(6) as pool:
        got = list(pool.map(lambda _: embedders.get("noise"), range(6)))
    assert _Counting.built == 1
    assert all(e is got[0] for e in got)


def test_two_registries_share_one_instance_per_model(counting: str) -> None:
    first = Embedders([SpaceSpec("a", counting, {"hop": 1})]).get("a")
    second = Embedders([SpaceSpec("b", counting, {"hop": 1})]).get("b")
    other = shared_embedder(counting, {"hop": 2})  # other options: another model
    assert first is second and other is not first
    assert _Counting.built == 2


def test_choosing_spaces_by_modality_loads_nothing(counting: str) -> None:
    embedders = Embedders([SpaceSpec("text", "sentence-transformers"), SpaceSpec("s", counting)])
    assert embedders.supporting("text", query=True) == ["text"]
    assert embedders.supporting("audio", query=True) == ["s"]
    assert _Counting.built == 0


def test_an_unconfigured_space_is_a_user_error_naming_the_configured_ones() -> None:
    from mmsearch.errors import UserError

    with pytest.raises(UserError, match="configured: text"):
        Embedders([SpaceSpec("text", "sentence-transformers")]).get("image")
