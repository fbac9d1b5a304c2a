"""Registry archives for the PRRC v2 annotation pool: pinned PyPI and npm packages.

Why pins: the pool must be rebuilt from the same bytes, so every registry package is named
with its exact version in ``pool_registry_pins.tsv`` (committed). The pins were drawn once,
by a seeded hash of the name, from two strata of each registry's package list (the long tail
and the most-downloaded), so READMEs, licences and bundles range from one-line stubs to
carefully written ones without anyone choosing them by quality. ``--pick-pins`` redraws them.

Archives are fetched with the ordinary clients into a cache outside the repo: ``pip
download`` (wheels only for long-tail packages, so no stranger's build code runs) and ``npm
pack --ignore-scripts``. A pin that cannot be fetched is recorded as such in the cache and
skipped on every later run, so reruns read the same archives.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

PINS_PATH = Path(__file__).resolve().parent / "pool_registry_pins.tsv"
PIN_SEED = "metamix-pool-v2:"
MAX_MEMBER_BYTES = 3_000_000
FETCH_TIMEOUT_S = 180
# Sdists fetched on purpose, for text that wheels and Debian lack (Canterbury corpus texts).
CURATED = (("pypi-sdist", "Brotli", "1.1.0", "curated"),)


@dataclass(frozen=True, slots=True)
class Pin:
    """One registry package at one version; ``how`` is pypi-wheel, pypi-sdist or npm."""

    how: str
    name: str
    version: str
    stratum: str

    @property
    def registry(self) -> str:
        return "npm" if self.how == "npm" else "pypi"

    @property
    def label(self) -> str:
        return f"{self.name} {self.version} ({self.registry})"

    def cache_dir(self, cache: Path) -> Path:
        safe = self.name.replace("/", "__").replace("@", "")
        return cache / self.how / f"{safe}-{self.version}"


def _hash(name: str) -> str:
    return hashlib.sha256((PIN_SEED + name).encode()).hexdigest()


def pick_pins(pypi_tsv: Path, npm_tsv: Path, per_stratum: dict[str, int]) -> list[Pin]:
    """Draw pins from the registries' package lists (name, version, ... columns).

    Strata: PyPI long tail (no download rank, released 2016 or later) and PyPI top 15,000,
    both as wheels (installing an sdist's build requirements to read its metadata would run
    strangers' code and compile extensions), npm packages under 2,000 and over 200,000
    downloads a month."""
    def rows(path: Path) -> list[list[str]]:
        lines = path.read_text(encoding="utf-8").splitlines()[1:]
        return [r for r in (line.split("\t") for line in lines) if len(r) >= 3 and r[0]]

    pypi, npm = rows(pypi_tsv), rows(npm_tsv)
    pools = {
        "pypi-tail": [("pypi-wheel", r) for r in pypi
                      if len(r) >= 4 and not r[3] and r[2] >= "2016-01" and r[1] != "0.0.0"],
        "pypi-top": [("pypi-wheel", r) for r in pypi if len(r) >= 4 and r[3].isdigit()],
        "npm-tail": [("npm", r) for r in npm if r[2].isdigit() and int(r[2]) < 2_000],
        "npm-top": [("npm", r) for r in npm if r[2].isdigit() and int(r[2]) >= 200_000],
    }
    pins = [Pin(*c) for c in CURATED]
    for stratum, pool in pools.items():
        ranked = sorted(pool, key=lambda hr: _hash(hr[1][0]))[: per_stratum[stratum]]
        pins += [Pin(how, r[0], r[1], stratum) for how, r in ranked]
    return pins


def write_pins(pins: list[Pin], path: Path = PINS_PATH) -> None:
    lines = ["how\tname\tversion\tstratum"] + [
        f"{p.how}\t{p.name}\t{p.version}\t{p.stratum}" for p in pins]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def read_pins(path: Path = PINS_PATH) -> list[Pin]:
    rows = path.read_text(encoding="utf-8").splitlines()[1:]
    return [Pin(*row.split("\t")) for row in rows if row.strip()]


def _fetch_command(pin: Pin, dest: Path) -> list[str]:
    if pin.how == "npm":
        return ["npm", "pack", "--ignore-scripts", "--silent", "--pack-destination", str(dest),
                f"{pin.name}@{pin.version}"]
    binary = ["--only-binary", ":all:"] if pin.how == "pypi-wheel" else ["--no-binary", ":all:"]
    return [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
            "--disable-pip-version-check", *binary, "-d", str(dest), f"{pin.name}=={pin.version}"]


def fetch(pin: Pin, cache: Path) -> Path | None:
    """The pin's archive in the cache, downloading it first if needed; None if unobtainable."""
    dest = pin.cache_dir(cache)
    failed = dest / "FAILED"
    if failed.exists():
        return None
    found = archives(dest)
    if found:
        return found[0]
    dest.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(_fetch_command(pin, dest), capture_output=True, text=True,
                              timeout=FETCH_TIMEOUT_S, cwd=dest, check=False)
        message = done.stderr.strip()[-500:] if done.returncode else ""
    except subprocess.TimeoutExpired:
        message = f"timed out after {FETCH_TIMEOUT_S}s"
    found = archives(dest)
    if not found:
        failed.write_text(message or "no archive", encoding="utf-8")
        return None
    return found[0]


def archives(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if p.name.endswith((".whl", ".tar.gz", ".tgz", ".zip", ".tar.bz2")))


def fetch_all(pins: list[Pin], cache: Path, workers: int = 4) -> dict[Pin, Path]:
    """Archives of every obtainable pin (network-bound, so a few downloads run at once)."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        paths = list(pool.map(lambda p: fetch(p, cache), pins))
    return {pin: path for pin, path in zip(pins, paths, strict=True) if path is not None}


def members(archive: Path) -> Iterator[tuple[str, bytes]]:
    """(path inside the package, bytes) of every regular file up to MAX_MEMBER_BYTES, sorted
    by path; the archive's top folder (``name-1.0/``, npm's ``package/``) is dropped."""
    items: list[tuple[str, bytes]] = []
    if archive.name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if not info.is_dir() and info.file_size <= MAX_MEMBER_BYTES:
                    items.append((info.filename, zf.read(info)))
    else:
        with tarfile.open(archive) as tf:
            for info in tf.getmembers():
                if info.isfile() and info.size <= MAX_MEMBER_BYTES:
                    handle = tf.extractfile(info)
                    if handle is not None:
                        items.append((info.name, handle.read()))
    strip = not archive.name.endswith(".whl") and len({n.split("/", 1)[0] for n, _ in items}) == 1
    for name, data in sorted(items):
        yield (name.split("/", 1)[1] if strip and "/" in name else name), data


def read_member(data: bytes) -> str | None:
    """Text of a member, or None for binary data (a NUL byte in the first 8 KiB)."""
    if b"\x00" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="(Re)draw or fetch the registry pins.")
    parser.add_argument("--pick-pins", nargs=2, type=Path, metavar=("PYPI_TSV", "NPM_TSV"))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/prrc_pool_cache"))
    args = parser.parse_args()
    if args.pick_pins:
        sizes = {"pypi-tail": 90, "pypi-top": 45, "npm-tail": 90, "npm-top": 40}
        write_pins(pick_pins(*args.pick_pins, sizes))
    pins = read_pins()
    got = fetch_all(pins, args.cache)
    print(f"{len(got)}/{len(pins)} registry archives in {args.cache}")


if __name__ == "__main__":
    _main()
