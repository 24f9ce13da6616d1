"""The package's layers import only downwards, even under TYPE_CHECKING or inside functions.

    errors, config  <  db, cluster  <  embed  <  spaces  <  ingest  <  query  <  rerank
                    <  client, eval  <  cli, api

Every `import` in `mmsearch/` is read from the source (ast), so a lazy import inside a
function or a TYPE_CHECKING block counts the same as one at the top: a cycle hidden that way
is still a cycle for whoever reads or changes the code.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mmsearch"
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "config"),
    ("db", "cluster"),
    ("embed",),
    ("spaces",),
    ("ingest",),
    ("query",),
    ("rerank",),
    ("client", "eval"),
    ("cli", "api"),
)
RANK = {name: level for level, names in enumerate(LAYERS) for name in names}


def layer_of(module: str) -> str | None:
    """`mmsearch.ingest.pipeline` → `ingest`; the package root and unknown names → None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "mmsearch" else None


def imports(path: Path) -> list[tuple[int, str]]:
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                package = module.split(".")[: -node.level]
                base = ".".join([*package, base] if base else package)
            found.append((node.lineno, base))
    return found


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if layer_of(_dotted(p)) is not None)


def _dotted(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)


def test_every_top_level_module_has_a_layer() -> None:
    names = {layer_of(_dotted(p)) for p in modules()} - {"__init__", "__main__"}
    assert names <= set(RANK), f"give these a layer in tests/test_layers.py: {names - set(RANK)}"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_go_downwards(path: Path) -> None:
    own = layer_of(_dotted(path))
    if own in (None, "__init__", "__main__"):
        return
    upward = [
        f"line {line}: {target}"
        for line, target in imports(path)
        if (layer := layer_of(target)) in RANK and RANK[layer] > RANK[own]
    ]
    assert not upward, f"{own} imports a higher layer: {upward}"


def test_a_known_upward_import_is_caught(tmp_path: Path) -> None:
    """The checker itself: an ingest module importing the client is reported."""
    probe = PACKAGE / "ingest" / "_layer_probe.py"
    probe.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import mmsearch.client\n"
    )
    try:
        with pytest.raises(AssertionError, match=r"mmsearch\.client"):
            test_imports_go_downwards(probe)
    finally:
        probe.unlink()
