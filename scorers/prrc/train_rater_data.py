"""The labelled excerpts ``train-rater`` learns from: seed labels joined with their text.

Two label-file layouts are read. v1 (``prrc_seed_v1.parquet``) has a ``domain`` per row,
which becomes the row's *kind*, and its source package is the id's prefix before ``:``. v2
(``prrc_seed_v2.parquet``, written by ``bench/annotation/merge_seed.py``) has ``kind`` and
``source`` columns and holds the v1 rows as well; v3 adds the web-crawl rows (and their
``parent_id``/``corruption``, which training does not need). The text of every row comes from the
excerpt files handed to annotators and must still hash to the labelled ``excerpt_sha256``.
"""

from __future__ import annotations

import glob
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from metamix.base.atomic import read_parquet_whole
from metamix.base.errors import UserError
from metamix.scorers.prrc.raters_common import DIMENSIONS

SEED_V1 = "data/annotations/prrc_seed_v1.parquet"
SEED_V2 = "data/annotations/prrc_seed_v2.parquet"
SEED_V3 = "data/annotations/prrc_seed_v3.parquet"
EXCERPT_GLOBS = ("data/annotations/seed_batch_*.jsonl",
                 "data/annotations/v2/batches/batch_*.jsonl",
                 "data/annotations/v3/batches/batch_*.jsonl")


@dataclass
class LabelledSet:
    """Column arrays, one entry per labelled excerpt, in label-file order."""

    ids: list[str]
    texts: list[str]
    kinds: np.ndarray
    sources: np.ndarray
    splits: np.ndarray
    labels: dict[str, np.ndarray]
    path: str

    def __len__(self) -> int:
        return len(self.ids)

    def groups(self, group_by: str) -> np.ndarray:
        return self.kinds if group_by == "kind" else self.sources

    def rows(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.splits == split)


def default_labels() -> str:
    """The newest merged version: v3, v2, else v1."""
    return next((p for p in (SEED_V3, SEED_V2) if Path(p).is_file()), SEED_V1)


def read_excerpts(patterns: Sequence[str]) -> dict[str, str]:
    """id → excerpt over every JSONL file matching ``patterns`` (missing folders are fine:
    v2 batches exist only once the pool is built)."""
    texts: dict[str, str] = {}
    for pattern in patterns:
        for name in sorted(glob.glob(pattern)):
            for number, line in enumerate(Path(name).read_text(encoding="utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    texts[row["id"]] = row["excerpt"]
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise UserError(f"{name}:{number}: not an excerpt record ({exc})") from None
    return texts


def load_labelled(labels: str, excerpt_globs: Sequence[str],
                  dimensions: Sequence[str] = DIMENSIONS) -> LabelledSet:
    """Read, join and check; every problem names the file and the row's id."""
    if not Path(labels).is_file():
        raise UserError(f"{labels}: label file not found (merge the seed labels first: "
                        "bench/annotation/merge_seed.py)")
    table = read_parquet_whole(labels)
    names = set(table.column_names)
    required = {"id", "excerpt_sha256", "split", *dimensions}
    if not {"kind", "domain"} & names or not required <= names:
        raise UserError(f"{labels}: needs columns {sorted(required)} and kind or domain; "
                        f"has {sorted(names)}")
    rows = table.to_pylist()
    texts = read_excerpts(excerpt_globs)
    joined = []
    for row in rows:
        text = texts.get(row["id"])
        if text is None:
            raise UserError(f"{labels}: no excerpt for {row['id']!r} in {list(excerpt_globs)}")
        if hashlib.sha256(text.encode("utf-8")).hexdigest() != row["excerpt_sha256"]:
            raise UserError(f"{labels}: excerpt of {row['id']!r} changed since it was labelled")
        for dim in dimensions:
            if row[dim] is None or not 0 <= row[dim] <= 5:
                raise UserError(f"{labels}: {dim} of {row['id']!r} is {row[dim]!r}, not 0..5")
        if row["split"] not in ("train", "test"):
            raise UserError(f"{labels}: split of {row['id']!r} is {row['split']!r}")
        joined.append(text)
    return LabelledSet(
        ids=[r["id"] for r in rows], texts=joined,
        kinds=np.array([str(r.get("kind") or r.get("domain")) for r in rows]),
        sources=np.array([str(r.get("source") or r["id"].split(":", 1)[0]) for r in rows]),
        splits=np.array([r["split"] for r in rows]),
        labels={dim: np.array([r[dim] for r in rows], dtype=np.int64) for dim in dimensions},
        path=str(labels))
