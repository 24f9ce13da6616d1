"""Files the service sends: an ingested record's own bytes and thumbnails.

Every path comes from a row the caller was allowed to read (the record's `uri`, a shot's
stored keyframe), never from the request. An original is sent only while it still holds
the bytes that were ingested (its SHA-256 matches the record's, checked once per file
version), so a file swapped or edited on disk since the ingest is not served under the old
record's permissions. Keyframes are sent only from under `$MMSEARCH_HOME/thumbs/`.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

from mmsearch.ingest.files import sha256_of

#: longest side of an image thumbnail, pixels (cards show them at about 240)
THUMB_SIDE = 480
#: how many verified file versions are remembered (each entry is a few hundred bytes)
VERIFIED_CACHE = 4096


class MediaFiles:
    """Locate the file to send for a visible record; make and cache image thumbnails."""

    def __init__(self, home: Path, *, max_image_pixels: int) -> None:
        self.thumbs = (home / "thumbs").resolve()
        self.max_image_pixels = max_image_pixels
        self._verified: dict[tuple[str, int, int, int, int], str] = {}
        self._lock = threading.Lock()

    def original(self, uri: str, sha256: str) -> Path | None:
        """The ingested file, if it is still there with the same content; else None."""
        path = Path(uri)
        try:
            info = path.stat()
        except OSError:
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
        key = (uri, info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
        with self._lock:
            digest = self._verified.get(key)
        if digest is None:
            try:
                digest, _ = sha256_of(path)
            except OSError:
                return None
            with self._lock:
                if len(self._verified) >= VERIFIED_CACHE:
                    self._verified.clear()
                self._verified[key] = digest
        return path if digest == sha256 else None

    def keyframe(self, stored: str | None) -> Path | None:
        """A video shot's keyframe (the path ingest stored), only from under the thumbs dir."""
        if not stored:
            return None
        path = Path(stored).resolve()
        if not path.is_relative_to(self.thumbs) or not path.is_file():
            return None
        return path

    def image_thumbnail(self, uri: str, sha256: str) -> Path | None:
        """A JPEG of at most THUMB_SIDE pixels, made once per image content and kept."""
        target = self.thumbs / sha256 / f"image-{THUMB_SIDE}.jpg"
        if target.is_file():
            return target
        source = self.original(uri, sha256)
        if source is None:
            return None
        from mmsearch.ingest.image import decode_image
        from mmsearch.ingest.types import ExtractError

        try:
            decoded = decode_image(source, max_pixels=self.max_image_pixels, max_side=THUMB_SIDE)
        except ExtractError:
            return None
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}")
        decoded.rgb.save(partial, "JPEG", quality=85)
        os.replace(partial, target)  # readers never see a half-written thumbnail
        return target
