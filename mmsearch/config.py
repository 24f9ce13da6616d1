"""Settings from the environment and an optional TOML file, resolved once per process.

Precedence: explicit arguments > `MMSEARCH_*` environment variables > `$MMSEARCH_HOME/
config.toml` > defaults. The file is where a space is switched to a hub model, or a reranker chosen:

    [spaces.image]
    family = "clip"
    model = "openai/clip-vit-base-patch32"

    [rerank]
    name = "evidence"
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import platformdirs


@dataclass(frozen=True)
class SpaceSpec:
    """Which embedder family (and its options) backs a named space."""

    name: str
    family: str
    options: dict[str, Any] = field(default_factory=dict)


#: The offline defaults (models that ship inside pip packages): MiniLM for text (chunks,
#: transcripts, OCR), ConSE (EfficientNet-Lite2 labels into the MiniLM space) so typed queries
#: reach images and video shots, the classifier's penultimate features for image→image
#: similarity, and the aisfx sound-effects CNN for "more like this sound".
DEFAULT_SPACES: tuple[SpaceSpec, ...] = (
    SpaceSpec("text", "sentence-transformers"),
    SpaceSpec("image", "conse"),
    SpaceSpec("visual", "efficientnet-features"),
    SpaceSpec("sound", "aisfx"),
)


def default_home() -> Path:
    return Path(platformdirs.user_data_dir("mmsearch"))


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str | None
    spaces: tuple[SpaceSpec, ...]
    max_file_bytes: int = 2 * 1024**3
    max_image_pixels: int = 80_000_000
    #: longest recording or video ingested, seconds (a 6-hour default)
    max_duration_s: int = 6 * 3600
    #: wall-clock seconds one file may take to decode, segment and embed
    max_file_seconds: int = 1800
    #: process memory (RSS, MiB) above which the file being decoded is given up
    max_memory_mb: int = 16 * 1024
    #: characters of text one file may yield, and segments it may make (each is embedded)
    max_text_chars: int = 10_000_000
    max_segments: int = 50_000
    #: what a zip-based document (.docx) may expand to: bytes in all, and ratio per member
    max_archive_bytes: int = 256 * 1024**2
    max_archive_ratio: int = 100
    #: options of the speech transcriber, e.g. {"model": "small.en"} (any faster-whisper size)
    transcriber: dict[str, Any] = field(default_factory=dict)
    #: the second stage over search results, e.g. {"name": "evidence"} (`mmsearch.rerank`);
    #: empty: off
    rerank: dict[str, Any] = field(default_factory=dict)

    @property
    def pgdata(self) -> Path:
        return self.home / "pg"

    def thumbs_dir(self, sha256: str) -> Path:
        """Where the keyframe thumbnails of a video with these bytes live (shared by every
        record of the same content)."""
        return self.home / "thumbs" / sha256

    @classmethod
    def load(cls, *, home: Path | None = None, database_url: str | None = None) -> Settings:
        home = Path(home or os.environ.get("MMSEARCH_HOME") or default_home()).expanduser()
        file_conf = _read_config_file(home / "config.toml")
        url = (
            database_url or os.environ.get("MMSEARCH_DATABASE_URL") or file_conf.get("database_url")
        )
        limits = {
            f.name: _int_setting(f"MMSEARCH_{f.name.upper()}", file_conf.get(f.name, f.default))
            for f in fields(cls)
            if f.name in LIMIT_NAMES
        }
        return cls(
            home=home.resolve(),
            database_url=url or None,
            spaces=_space_specs(file_conf.get("spaces", {})),
            transcriber=_transcriber_options(file_conf.get("transcriber", {})),
            rerank=dict(file_conf.get("rerank", {})),
            **limits,
        )


#: the per-file limits: each is MMSEARCH_<NAME> in the environment or <name> in config.toml
LIMIT_NAMES = (
    "max_file_bytes",
    "max_image_pixels",
    "max_duration_s",
    "max_file_seconds",
    "max_memory_mb",
    "max_text_chars",
    "max_segments",
    "max_archive_bytes",
    "max_archive_ratio",
)


def _int_setting(env: str, default: Any) -> int:
    """An integer from the environment (else the file or default); a bad one is a user error."""
    from mmsearch.errors import UserError

    value = os.environ.get(env, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise UserError(f"{env} (or config.toml) must be an integer, not {value!r}") from None


def _transcriber_options(conf: dict[str, Any]) -> dict[str, Any]:
    options = dict(conf)
    if model := os.environ.get("MMSEARCH_WHISPER_MODEL"):
        options["model"] = model
    return options


def _read_config_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    with path.open("rb") as fh:
        return tomllib.load(fh)


def _space_specs(overrides: dict[str, dict[str, Any]]) -> tuple[SpaceSpec, ...]:
    """Defaults, with per-space overrides from the config file; new names add spaces."""
    specs = {s.name: s for s in DEFAULT_SPACES}
    for name, conf in overrides.items():
        conf = dict(conf)
        if conf.pop("enabled", True) is False:
            specs.pop(name, None)
            continue
        family = conf.pop("family", specs[name].family if name in specs else None)
        if family is None:
            raise ValueError(f"config: space {name!r} needs a 'family'")
        specs[name] = SpaceSpec(name, family, conf)
    return tuple(specs.values())
