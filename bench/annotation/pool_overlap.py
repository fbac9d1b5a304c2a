"""Does an excerpt share a 50-character span with the bundled corpus?

Both sides are whitespace-collapsed first (a reflowed paragraph is still the same text),
then every 50-character window is hashed with a polynomial rolling hash computed by numpy
prefix sums (mod 2^64), so the ~52 M windows of the corpus index in seconds. A window made of
fewer than ``MIN_DISTINCT`` distinct characters (a rule of dashes, a run of spaces and
equals signs), or lying wholly inside markup tags (``<!DOCTYPE html PUBLIC "-//W3C//…">``,
``<meta http-equiv="Content-Type" …>``, which every raw HTML page repeats), is not shared
*text*: such windows are reported separately, not counted as overlap.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

SPAN = 50
MIN_DISTINCT = 8
_BASE = np.uint64(0x100000001B3)
_BASE_INV = np.uint64(pow(int(_BASE), -1, 2**64))
_WS = re.compile(r"\s+")
# A run of tags: a declaration, or a tag name followed by space, "/" or ">" (so the "<" of
# a comparison in code, ``i<n;``, does not open one).
_MARKUP = re.compile(r"(?:<(?:!DOCTYPE|\?xml|/?[A-Za-z][A-Za-z0-9:-]*(?=[\s/>]))[^<>]{0,500}>\s?)+",
                     re.IGNORECASE)


def collapse(text: str) -> str:
    return _WS.sub(" ", text).strip()


def window_hashes(text: str, span: int = SPAN) -> np.ndarray:
    """Hash of every ``span``-character window of ``text`` (already collapsed)."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    n = len(codes)
    if n < span:
        return np.empty(0, dtype=np.uint64)
    with np.errstate(over="ignore"):
        powers = np.cumprod(np.full(n, _BASE, dtype=np.uint64))
        powers = np.concatenate(([np.uint64(1)], powers[:-1]))
        inverse = np.cumprod(np.full(n, _BASE_INV, dtype=np.uint64))
        inverse = np.concatenate(([np.uint64(1)], inverse[:-1]))
        prefix = np.concatenate(([np.uint64(0)], np.cumsum(codes * powers, dtype=np.uint64)))
        return (prefix[span:] - prefix[:-span]) * inverse[: n - span + 1]


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """np.unique without its slow path for uint64 in numpy 2.4 (sort, then drop repeats)."""
    ordered = np.sort(values)
    if len(ordered) < 2:
        return ordered
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]


class CorpusOverlap:
    """The set of window hashes of every text under the corpus folders given."""

    def __init__(self, folders: list[Path]) -> None:
        chunks = []
        self.documents = 0
        for folder in folders:
            for shard in sorted(folder.glob("*.parquet")):
                texts = pq.read_table(shard, columns=["text"]).column("text").to_pylist()
                self.documents += len(texts)
                joined = "\x00".join(collapse(t) for t in texts if t)
                chunks.append(sorted_unique(window_hashes(joined)))
        self.hashes = sorted_unique(np.concatenate(chunks)) if chunks else np.empty(0, np.uint64)

    @classmethod
    def from_texts(cls, texts: list[str]) -> CorpusOverlap:
        """The same index over texts in memory (an earlier pool's excerpts)."""
        self = cls([])
        self.documents = len(texts)
        joined = "\x00".join(collapse(t) for t in texts if t)
        self.hashes = sorted_unique(window_hashes(joined))
        return self

    def shared_windows(self, text: str) -> tuple[list[str], list[str]]:
        """(shared text windows, shared low-variety windows) of ``text``."""
        flat = collapse(text)
        hashes = window_hashes(flat)
        if not len(hashes) or not len(self.hashes):
            return [], []
        where = np.searchsorted(self.hashes, hashes)
        where[where == len(self.hashes)] = 0
        hits = np.flatnonzero(self.hashes[where] == hashes)
        markup = [(m.start(), m.end()) for m in _MARKUP.finditer(flat)]
        starts = np.array([a for a, _ in markup], dtype=np.int64)
        shared, trivial = [], []
        for i in hits:
            window = flat[i : i + SPAN]
            k = int(np.searchsorted(starts, i, side="right")) - 1
            in_markup = k >= 0 and markup[k][1] >= i + SPAN
            if len(set(window)) < MIN_DISTINCT or in_markup:
                trivial.append(window)
            else:
                shared.append(window)
        return shared, trivial


def print_kinds_and_finish(kinds: dict[str, int], batches: dict[str, list[dict]],
                           problems: list[str], extra: dict[str, int] | None = None) -> None:
    """The verifiers' report: count per kind and its range per batch, then every problem
    (exit 1) or "ok"."""
    for kind, n in sorted(kinds.items()):
        per_batch = [sum(r.get("kind") == kind for r in rows) for rows in batches.values()]
        note = f"  ({extra.get(kind, 0):>4} corrupted)" if extra is not None else ""
        print(f"  {kind:<20} {n:>5}{note}   per batch {min(per_batch)}-{max(per_batch)}")
    if problems:
        print("\n".join(f"error: {p}" for p in problems[:20]), file=sys.stderr)
        raise SystemExit(1)
    print("ok")


def record_problems(where: str, record: dict, fields: tuple[str, ...]) -> list[str]:
    """A pool record's shape: its fields in order, its hash, and an excerpt as the raters
    cut it (≤ 2,000 characters, at least 40)."""
    import hashlib

    from metamix.scorers.prrc.rubrics import excerpt

    if tuple(record) != fields:
        return [f"{where}: fields {list(record)} != {list(fields)}"]
    text = record["excerpt"]
    problems = []
    if hashlib.sha256(text.encode("utf-8")).hexdigest() != record["excerpt_sha256"]:
        problems.append(f"{where}: excerpt_sha256 does not match the excerpt")
    if excerpt(text, 2000) != text or len(text) < 40:
        problems.append(f"{where}: not a raters' excerpt (over 2,000 chars, cut or under 40)")
    return problems
