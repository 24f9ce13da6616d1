"""The judged sets, by group: each builder fetches its sources and returns its sets."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from mmsearch.eval.judged import JudgedSet

Builder = Callable[..., list[JudgedSet]]

#: group → module under bench.evalsets with `build(cache, *, quick) -> list[JudgedSet]`
GROUPS = ("images", "speech", "words", "sounds", "video")
#: the text-similarity check: not a retrieval set, it needs only the text space
LEE = "lee"
CHOICES = (*GROUPS, LEE)


def builder(group: str) -> Builder:
    """The group's `build`, imported only when asked for (each pulls its own libraries)."""
    if group not in GROUPS:
        raise KeyError(f"unknown evaluation set {group!r}: choose from {', '.join(GROUPS)}")
    return importlib.import_module(f"bench.evalsets.{group}").build


def build(group: str, cache: Path, *, quick: bool) -> list[JudgedSet]:
    return builder(group)(cache, quick=quick)
