"""Shared pieces of the heuristics benches: the corpus sample and datatrove's reference run.

datatrove is a bench-only dependency (``bench`` extra); ``scorers/`` never imports it.
"""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

DEFAULT_CORPUS_GLOB = str(REPO_ROOT / "data" / "sample" / "train" / "*.parquet")

#: our family name -> the datatrove filter it reproduces
FAMILY_TO_DATATROVE = {
    "gopher_quality": "GopherQualityFilter",
    "gopher_repetition": "GopherRepetitionFilter",
    "c4": "C4QualityFilter",
    "fineweb": "FineWebQualityFilter",
}


def load_corpus(pattern: str = DEFAULT_CORPUS_GLOB, limit: int | None = None, seed: int = 0):
    """Columns id/text/domain of every parquet file matching ``pattern``; with ``limit``, a
    deterministic random sample of that many rows (in corpus order)."""
    paths = sorted(glob.glob(pattern))
    if not paths:
        raise SystemExit(f"no parquet files match {pattern!r}")
    tables = [pq.read_table(p, columns=["id", "text", "domain"]) for p in paths]
    table = pa.concat_tables(tables).combine_chunks()
    if limit is not None and limit < table.num_rows:
        rows = np.sort(np.random.default_rng(seed).choice(table.num_rows, limit, replace=False))
        table = table.take(pa.array(rows))
    return table


def datatrove_filters() -> dict[str, object]:
    """datatrove's four quality filters with default parameters, keyed by our family name."""
    os.environ.setdefault("LOGURU_LEVEL", "ERROR")
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )

    return {
        "gopher_quality": GopherQualityFilter(),
        "gopher_repetition": GopherRepetitionFilter(),
        "c4": C4QualityFilter(),
        "fineweb": FineWebQualityFilter(),
    }


def run_datatrove(
    filters: dict[str, object],
    texts: Iterable[str],
    progress: Callable[[int], None] | None = None,
) -> dict[str, list[str | None]]:
    """Drop reason per filter per document (None = kept), each filter seeing the original
    text (C4 rewrites ``doc.text``, so every filter gets a fresh Document)."""
    from datatrove.data import Document

    reasons: dict[str, list[str | None]] = {name: [] for name in filters}
    for index, text in enumerate(texts):
        for name, filt in filters.items():
            result = filt.filter(Document(text=text, id=str(index)))
            if isinstance(result, tuple):
                keep, reason = result
            else:
                keep, reason = result, None
            reasons[name].append(None if keep else (reason or "dropped"))
        if progress is not None:
            progress(index)
    return reasons


def run_ours(families: dict[str, object], table: pa.Table, batch_size: int = 1000):
    """Every family's outputs over ``table`` in batches, concatenated per column."""
    columns: dict[str, list[pa.Array]] = {}
    for batch in table.to_batches(max_chunksize=batch_size):
        for family in families.values():
            for name, values in family.score(batch).items():
                columns.setdefault(name, []).append(values)
    return {name: pa.concat_arrays(parts) for name, parts in columns.items()}
