"""In-memory top-fraction selection with exactly the semantics of ``metamix.pipeline.selection``.

A sweep selects ~150 subsets of the same scored corpus; going through DuckDB and Parquet
output each time would dominate the run. So the score columns are loaded and normalized
once into a matrix, and each weight vector costs one weighted sum and one sort.

What must match ``run_selection`` (tested id for id):
  * normalization over the whole input, hard-filtered rows included: minmax
    ``5.0 * (s - lo) / (hi - lo)`` (constant column: 0), or percentile
    ``5.0 * percent_rank`` with ties sharing the lowest rank;
  * NULL/NaN/inf count as worst: 0 for a weight >= 0, 5 for a negative one;
  * combined score summed term by term in the weights' order (same float rounding);
  * rows with any hard filter's ``*_drop_reason`` set are not candidates; rank by score
    descending, ties by id ascending; keep ceil(round(fraction * n, 6)) globally or per domain.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from metamix.base.errors import UserError

RESERVED_COLUMNS = ("id", "text", "domain", "source", "n_tokens")


@dataclass(frozen=True)
class ScoreMatrix:
    """Normalized scores (NaN = missing) and what ranking needs, one row per document."""

    ids: np.ndarray             # object (str)
    id_rank: np.ndarray         # int64: position of each id in ascending id order
    domains: np.ndarray         # object (str)
    n_tokens: np.ndarray        # int64
    candidate: np.ndarray       # bool: survives every hard filter
    names: tuple[str, ...]
    normalized: np.ndarray      # float64 (n_docs, n_scores), 0..5, NaN where missing
    normalization: str

    @property
    def n_docs(self) -> int:
        return len(self.ids)


def numeric_columns(paths: list[Path]) -> list[str]:
    """Numeric (int, float, decimal, bool) columns in any shard, minus the reserved ones."""
    found: dict[str, None] = {}
    for path in paths:
        for f in pq.read_schema(path):
            t = f.type
            numeric = (pa.types.is_integer(t) or pa.types.is_floating(t)
                       or pa.types.is_decimal(t) or pa.types.is_boolean(t))
            if numeric and f.name not in RESERVED_COLUMNS:
                found.setdefault(f.name)
    return sorted(found)


def _column(table: pa.Table, name: str, dtype: pa.DataType) -> pa.ChunkedArray:
    if name in table.column_names:
        return table.column(name).cast(dtype)
    return pa.chunked_array([pa.nulls(len(table), dtype)])


def load_score_matrix(paths: list[Path], scores: list[str], *, normalization: str = "minmax",
                      hard_filters: list[str] | tuple[str, ...] = ()) -> ScoreMatrix:
    """Read id/domain/n_tokens and the score columns of ``paths`` (in order) and normalize."""
    tables = []
    for path in paths:
        schema = pq.read_schema(path)
        wanted = ["id", "domain", "n_tokens", *scores, *[f"{f}_drop_reason" for f in hard_filters]]
        tables.append(pq.read_table(path, columns=[c for c in wanted if c in schema.names]))
    for name in scores:
        if not any(name in t.column_names for t in tables):
            raise UserError(f"metarater.scores: no column '{name}' in the scored shards")
    for f in hard_filters:
        if not any(f"{f}_drop_reason" in t.column_names for t in tables):
            raise UserError(f"metarater.hard_filters: no column '{f}_drop_reason'")
    ids = np.concatenate([t.column("id").to_numpy(zero_copy_only=False) for t in tables])
    candidate = np.ones(len(ids), dtype=bool)
    for f in hard_filters:
        reasons = [pc.is_null(_column(t, f"{f}_drop_reason", pa.string())) for t in tables]
        candidate &= np.concatenate([r.to_numpy(zero_copy_only=False) for r in reasons])
    raw = np.column_stack([
        np.concatenate([_column(t, s, pa.float64()).to_numpy(zero_copy_only=False)
                        for t in tables]).astype(np.float64) for s in scores
    ]) if scores else np.zeros((len(ids), 0))
    raw[~np.isfinite(raw)] = np.nan
    if len(set(ids.tolist())) != len(ids):
        raise UserError("scored input: 'id' is not unique")
    order = np.argsort(ids.astype(str), kind="stable")
    id_rank = np.empty(len(ids), dtype=np.int64)
    id_rank[order] = np.arange(len(ids))
    return ScoreMatrix(
        ids=ids, id_rank=id_rank,
        domains=np.concatenate([t.column("domain").to_numpy(zero_copy_only=False)
                                for t in tables]),
        n_tokens=np.concatenate([t.column("n_tokens").to_numpy(zero_copy_only=False)
                                 for t in tables]).astype(np.int64),
        candidate=candidate, names=tuple(scores),
        normalized=np.column_stack([normalize(raw[:, j], normalization)
                                    for j in range(raw.shape[1])]) if scores else raw,
        normalization=normalization)


def normalize(raw: np.ndarray, normalization: str) -> np.ndarray:
    """Map one column onto 0..5 like the DuckDB selection; NaN stays NaN (missing)."""
    out = np.full(len(raw), np.nan)
    present = ~np.isnan(raw)
    values = raw[present]
    if not len(values):
        return out
    if normalization == "minmax":
        lo, hi = values.min(), values.max()
        out[present] = 5.0 * (values - lo) / (hi - lo) if hi > lo else 0.0
    elif normalization == "percentile":
        sorted_vals = np.sort(values)
        rank0 = np.searchsorted(sorted_vals, values, side="left")  # rank - 1, ties lowest
        n = len(values)
        out[present] = 5.0 * (rank0 / (n - 1)) if n > 1 else 0.0
    else:
        raise ValueError(f"unknown normalization {normalization!r}")
    return out


def combined_scores(matrix: ScoreMatrix, weights: Mapping[str, float]) -> np.ndarray:
    """sum_i w_i * norm_i in the weights' order; missing = 0 (w >= 0) or 5 (w < 0)."""
    total: np.ndarray | None = None
    for name, w in weights.items():
        col = matrix.normalized[:, matrix.names.index(name)]
        term = float(w) * np.where(np.isnan(col), 0.0 if w >= 0 else 5.0, col)
        total = term if total is None else total + term
    if total is None:
        raise ValueError("no weights given")
    return total


def quota(fraction: float, n: int) -> int:
    return math.ceil(round(fraction * n, 6))


def select_top_fraction(matrix: ScoreMatrix, weights: Mapping[str, float], fraction: float,
                        *, per_domain: bool = False) -> np.ndarray:
    """Row indices of the kept documents, best first (per domain: domains in sorted order)."""
    score = combined_scores(matrix, weights)
    rows = np.flatnonzero(matrix.candidate)
    ranked = rows[np.lexsort((matrix.id_rank[rows], -score[rows]))]
    if not per_domain:
        return ranked[: quota(fraction, len(ranked))]
    domains = matrix.domains[ranked]
    kept = [ranked[domains == d][: quota(fraction, int(np.sum(domains == d)))]
            for d in sorted(set(domains.tolist()))]
    return np.concatenate(kept) if kept else ranked[:0]


def random_selection(matrix: ScoreMatrix, fraction: float, seed: int, *,
                     per_domain: bool = False) -> np.ndarray:
    """As many candidates as a top-fraction selection keeps (per domain too), drawn
    uniformly: the no-quality-signal baseline, with the same domain mix when per_domain."""
    rng = np.random.default_rng(seed)
    rows = np.flatnonzero(matrix.candidate)
    if not per_domain:
        return np.sort(rng.choice(rows, size=quota(fraction, len(rows)), replace=False))
    domains = matrix.domains[rows]
    parts = [rng.choice(rows[domains == d], size=quota(fraction, int(np.sum(domains == d))),
                        replace=False) for d in sorted(set(domains.tolist()))]
    return np.sort(np.concatenate(parts)) if parts else rows[:0]
