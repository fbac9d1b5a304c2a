"""DSIR importance: log p_target(doc) - log p_raw(doc) under hashed bag-of-n-gram models.

Xie et al. 2023 ("Data Selection for Language Models via Importance Resampling") fit two
bag-of-hashed-ngram models, one on a target set and one on the raw corpus, and weight each
raw document by the likelihood ratio of its features. Meta-rater used books, Wikipedia and
math targets; our default target is the bundled corpus's ``books`` + ``reference`` domains
and the raw model is the whole train split.

Each model is a vector of bucket counts (unigrams and bigrams of lowercased wordpunct
tokens, hashed into ``n_buckets`` = 10,000 buckets as in the paper), add-``smoothing``
(Laplace) smoothed. A document's score is

    sum over its features f of  log p_target(f) - log p_raw(f)

which is the paper's un-normalized log importance weight (it grows with document length;
``length_normalized=True`` divides by the number of features for a per-feature mean, which
is easier to compare across documents of different lengths). Empty documents score 0.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa

from metamix.scorers.base import Direction, Scorer
from metamix.scorers.model_based._common import LazyModel, resolve_model_path, text_column
from metamix.scorers.model_based.hashed_ngrams import hashed_unigram_bigram_features
from metamix.scorers.registry import register

DEFAULT_MODEL = "dsir_books_reference.npz"
DEFAULT_BUCKETS = 10_000


def fit_bucket_counts(
    texts: Iterable[str], n_buckets: int = DEFAULT_BUCKETS, batch_size: int = 1000
) -> np.ndarray:
    """Total hashed-feature counts of ``texts`` (int64, one per bucket)."""
    counts = np.zeros(n_buckets, dtype=np.int64)
    chunk: list[str] = []

    def flush() -> None:
        feats = hashed_unigram_bigram_features(pa.array(chunk, pa.large_string()), n_buckets)
        counts[:] += np.bincount(feats.buckets, minlength=n_buckets)
        chunk.clear()

    for text in texts:
        chunk.append(text)
        if len(chunk) >= batch_size:
            flush()
    if chunk:
        flush()
    return counts


def save_dsir_model(
    path: Path, target_counts: np.ndarray, raw_counts: np.ndarray, meta: dict[str, object]
) -> None:
    if target_counts.shape != raw_counts.shape:
        raise ValueError("target and raw count vectors differ in size")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        target_counts=target_counts.astype(np.int64),
        raw_counts=raw_counts.astype(np.int64),
        meta=np.array(json.dumps(meta, sort_keys=True)),
    )


def load_dsir_counts(path: Path) -> tuple[np.ndarray, np.ndarray, dict[str, object]]:
    with np.load(path) as z:
        return z["target_counts"], z["raw_counts"], json.loads(str(z["meta"]))


def log_ratio_table(
    target_counts: np.ndarray, raw_counts: np.ndarray, smoothing: float
) -> np.ndarray:
    """log p_target(bucket) - log p_raw(bucket) with add-``smoothing`` estimates."""
    b = len(target_counts)
    log_t = np.log(target_counts + smoothing) - np.log(target_counts.sum() + smoothing * b)
    log_r = np.log(raw_counts + smoothing) - np.log(raw_counts.sum() + smoothing * b)
    return log_t - log_r


@register
class DsirScorer(LazyModel, Scorer):
    """Column ``dsir_<target_name>_logratio``: the DSIR log importance weight."""

    name = "dsir"

    def __init__(
        self,
        model_path: str | None = None,
        target_name: str = "books_reference",
        smoothing: float = 1.0,
        length_normalized: bool = False,
        max_chars: int | None = None,
    ) -> None:
        if smoothing <= 0:
            raise ValueError("smoothing must be > 0 (log of a zero count otherwise)")
        self.model_path = model_path
        self.target_name = target_name
        self.smoothing = smoothing
        self.length_normalized = length_normalized
        self.max_chars = max_chars

    @property
    def column(self) -> str:
        return f"dsir_{self.target_name}_logratio"

    def directions(self) -> dict[str, Direction]:
        return {self.column: "higher"}   # more like the target distribution

    def output_schema(self) -> pa.Schema:
        return pa.schema([(self.column, pa.float32())])

    def _table(self) -> np.ndarray:
        if getattr(self, "_cached_table", None) is None:
            target, raw, _ = load_dsir_counts(resolve_model_path(self.model_path, DEFAULT_MODEL))
            self._cached_table = log_ratio_table(target, raw, self.smoothing)
        return self._cached_table

    def log_ratios(self, texts: pa.Array) -> np.ndarray:
        table = self._table()
        feats = hashed_unigram_bigram_features(texts, len(table))
        total = np.bincount(feats.rows, weights=table[feats.buckets],
                            minlength=feats.n_rows).astype(np.float64)
        if self.length_normalized:
            n = feats.counts_per_row()
            total = np.divide(total, n, out=np.zeros_like(total), where=n > 0)
        return total

    def score(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        values = self.log_ratios(text_column(batch, self.max_chars))
        return {self.column: pa.array(values.astype(np.float32), type=pa.float32())}
