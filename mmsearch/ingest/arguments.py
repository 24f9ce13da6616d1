"""The public ingest arguments, checked before any file is touched.

A `str` is a sequence of characters, so `client.ingest("some/dir")` used to ingest every
character as a path ("/" among them). Here a single path (`str` or `os.PathLike`) is one
item, a single tag or principal likewise, and anything else that is not what it should be
is a `TypeError` naming the argument, never iterated.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


def paths_argument(paths: object) -> list[Path]:
    """One path or an iterable of paths (str or os.PathLike)."""
    if isinstance(paths, (str, os.PathLike)):
        return [Path(paths)]
    items = _iterable(paths, "paths", "paths (str or os.PathLike)")
    wrong = [p for p in items if not isinstance(p, (str, os.PathLike))]
    if wrong:
        raise TypeError(f"paths must be str or os.PathLike, not {type(wrong[0]).__name__}")
    return [Path(p) for p in items]


def strings_argument(value: object, name: str) -> list[str] | None:
    """None (not given), one string, or an iterable of strings."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    items = _iterable(value, name, "strings")
    wrong = [v for v in items if not isinstance(v, str)]
    if wrong:
        raise TypeError(f"{name} must hold strings, not {type(wrong[0]).__name__}")
    return items


def metadata_argument(value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise TypeError("metadata must be a dict with string keys")
    return dict(value)


def text_argument(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    return value


def flag_argument(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, not {value!r}")
    return value


def _iterable(value: object, name: str, what: str) -> list[Any]:
    if isinstance(value, (bytes, bytearray, Mapping)) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be one of or a list of {what}, not {type(value).__name__}")
    return list(value)
