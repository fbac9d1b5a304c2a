"""Shared pieces of the PRRC v2 pool builder: the candidate record and text cutting.

A *candidate* is one document an annotator might read; its excerpt is cut later exactly as
the raters see text. Long streams (a novel, a log, a minified bundle) are cut into pieces
whose target length is drawn from a seeded hash, so the pool mixes short and full-length
excerpts and shows the middle of files as well as their openings.
"""

from __future__ import annotations

import hashlib
import math
import re
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "corpus"))

from textutil import decode, dpkg_files, dpkg_version, html_to_text, normalize  # noqa: E402,F401

SEED = "metamix-pool-v2"
# Every package the bundled corpus was built from (data/sample/SOURCES.md); no excerpt may
# come from one of them. Checked against SOURCES.md at build time as well.
CORPUS_PACKAGES = frozenset((
    "python3.11-doc", "debian-reference-en", "r-doc-html", "zsh-doc", "bash-doc", "fortunes",
    "fortunes-min", "libpython3.11-minimal", "libpython3.11-stdlib", "python3-lib2to3",
    "perl-modules-5.36", "emacs-el", "bible-kjv", "bible-kjv-text", "debian-handbook",
    "perl-doc", "dict-gcide", "dict-foldoc", "dict-jargon", "dict-devil", "linux-doc-6.1",
    "git-doc", "debian-faq", "debian-faq-de", "debian-faq-fr", "emacs-common",
    "python-django-doc", "coreutils", "dpkg", "grep", "gzip", "sed", "tar", "perl", "bash",
    "dictd", "zsh-common",
))  # fmt: skip
# Their Debian source packages: a sibling binary (git-man beside git-doc, perl-base beside
# perl-doc, linux-libc-dev beside linux-doc-6.1) may carry the same text, so it is excluded too.
CORPUS_SOURCE_PACKAGES = frozenset((
    "bash", "bible-kjv", "coreutils", "debian-faq", "debian-handbook", "debian-reference",
    "dict-devil", "dict-foldoc", "dict-gcide", "dict-jargon", "dictd", "dpkg", "emacs",
    "fortune-mod", "git", "grep", "gzip", "linux", "perl", "python-django", "python3.11",
    "python3-stdlib-extensions", "r-base", "sed", "tar", "zsh",
))  # fmt: skip


@cache
def source_of(package: str) -> str:
    """The Debian source package a binary package was built from (itself if unknown)."""
    done = subprocess.run(["dpkg-query", "-W", "-f=${source:Package}", package],
                          capture_output=True, text=True, check=False)
    return done.stdout.strip() or package


def is_corpus_package(package: str) -> bool:
    """True for a corpus source package or any binary built from the same Debian source."""
    return package in CORPUS_PACKAGES or source_of(package) in CORPUS_SOURCE_PACKAGES


@dataclass(frozen=True, slots=True)
class Candidate:
    """One document that may enter the pool.

    ``group`` is the sub-source the sampler balances over (e.g. ``npm-tail``, ``fail2ban``);
    ``unit`` is the file it came from, so pieces of one file are spread out, not bunched."""

    id: str
    kind: str
    source: str
    licence: str
    text: str
    group: str
    unit: str
    cut: str


def stable_hash(*parts: str) -> int:
    """A seeded 64-bit hash: the only source of 'randomness' in the pool."""
    digest = hashlib.sha256("\x1f".join((SEED, *parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def stream_pieces(text: str, key: str, low: int = 250, high: int = 6000) -> list[str]:
    """Cut a long text at line breaks into pieces whose target lengths are log-uniform in
    [low, high], drawn from ``key``; a piece never splits a line unless the line alone is
    longer than the target (minified code)."""
    pieces: list[str] = []
    start, n = 0, 0
    span = math.log(high / low)
    while start < len(text):
        u = stable_hash(key, str(n)) / 2**64
        target = int(low * math.exp(u * span))
        end = start + target
        if end < len(text):
            newline = text.rfind("\n", start + target // 2, end)
            if newline > start:
                end = newline
        piece = text[start:end].strip("\n")
        if piece.strip():
            pieces.append(piece)
        start, n = end, n + 1
    return pieces


def split_before(text: str, pattern: re.Pattern[str]) -> list[str]:
    """Split before every match of a MULTILINE pattern; the preamble is its own piece."""
    starts = [m.start() for m in pattern.finditer(text)]
    bounds = [0, *[s for s in starts if s > 0], len(text)]
    return [text[a:b].strip("\n") for a, b in zip(bounds, bounds[1:], strict=False)
            if text[a:b].strip()]


@cache
def deb_version(package: str) -> str:
    return dpkg_version(package)


@cache
def deb_licence(package: str) -> str:
    """The licence of a Debian package's main files, from its DEP-5 copyright file (the
    ``License:`` of the ``Files: *`` stanza), else a pointer to the copyright file."""
    path = Path("/usr/share/doc") / package / "copyright"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"see {path}"
    for stanza in re.split(r"\n\s*\n", text):
        if re.search(r"^Files:\s*\*\s*$", stanza, re.MULTILINE):
            match = re.search(r"^License:\s*(\S.*)$", stanza, re.MULTILINE)
            if match:
                return match.group(1).strip()
    match = re.search(r"^License:\s*(\S.*)$", text, re.MULTILINE)
    return match.group(1).strip() if match else f"see {path}"


def deb_source(package: str) -> str:
    return f"{package} {deb_version(package)}"


@cache
def owner_of(path: str) -> str | None:
    """The Debian package that installed ``path`` (dpkg -S), or None."""
    done = subprocess.run(["dpkg-query", "-S", path], capture_output=True, text=True,
                          check=False)
    if done.returncode or not done.stdout:
        return None
    return done.stdout.split(":", 1)[0].split(",")[0].strip()


def deb_candidates(kind: str, package: str, locator: str, pieces: list[str], *, group: str,
                   cut: str, licence: str | None = None) -> list[Candidate]:
    """Candidates from the pieces of one file of an installed Debian package."""
    if is_corpus_package(package):
        raise ValueError(f"{package} is (built from the same source as) a corpus package")
    source, lic = deb_source(package), licence or deb_licence(package)
    unit = f"{package}:{locator}"
    return [Candidate(f"{kind}:{unit}#{i}", kind, source, lic, normalize(p), group, unit, cut)
            for i, p in enumerate(pieces) if p.strip()]


def read_bytes_text(path: Path) -> str:
    """A (possibly gzip-compressed) file decoded the way a naive pipeline would: UTF-8 if
    valid, else latin-1, so legacy encodings turn into the mojibake crawls contain."""
    import gzip

    data = path.read_bytes()
    if path.suffix in (".gz", ".dz"):
        data = gzip.decompress(data)
    return decode(data)
