"""Embedders, one module per model family; see `base` for the interface and registry."""

import importlib

_BUILTIN_FAMILIES = (
    "mmsearch.embed.sentence_transformer",
    "mmsearch.embed.conse",
    "mmsearch.embed.efficientnet",
    "mmsearch.embed.clip",
    "mmsearch.embed.aisfx",
    "mmsearch.embed.clap",
)


def load_builtin_families() -> None:
    """Import the built-in family modules so their `@register` decorators run.

    The modules import their heavy libraries lazily, so this stays cheap.
    """
    for module in _BUILTIN_FAMILIES:
        importlib.import_module(module)
