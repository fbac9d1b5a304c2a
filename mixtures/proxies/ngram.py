"""Interpolated modified Kneser–Ney n-gram proxy over BPE ids, fully vectorized in numpy.

Why an n-gram: it trains in about a second on a few million tokens, is deterministic, and
ranks data subsets much like a small transformer does, which makes K = 128 proxy runs
affordable on a laptop.

Model (Chen & Goodman 1998, interpolated, modified discounts D1, D2, D3+ per order):

    p_k(w | h) = max(c_k(hw) - D_k(c_k(hw)), 0) / c_k(h.)  +  gamma_k(h) * p_{k-1}(w | h')
    gamma_k(h) = (D_k1 N1(h.) + D_k2 N2(h.) + D_k3 N3+(h.)) / c_k(h.)

with raw counts at the highest order and continuation counts (number of distinct left
extensions) below it; a context never seen falls back to p_{k-1} entirely, and the unigram
level interpolates with the uniform 1/V, so every vocab id gets a finite loss. Discounts
are clipped to [min_discount, r] so each conditional distribution sums to exactly 1.

Every document (training and validation) is left-padded with n-1 ``<|endoftext|>`` ids, so
n-grams never span two documents and the first token is predicted from a start context.
N-grams are encoded exactly as base-V integers in int64 when V**n fits, else hashed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mixtures.proxies.base import (
    ProxyError,
    ProxyResult,
    ProxyTrainer,
    TrainingData,
    ValidationSet,
    losses_from_logprobs,
)

_HASH_MUL = np.uint64(0x9E3779B97F4A7C15)


def windows(docs: list[np.ndarray], order: int, pad_id: int) -> np.ndarray:
    """(n_tokens, order) int64: each token with its order-1 predecessors (padded per doc)."""
    docs = [d for d in docs if len(d)]
    if not docs:
        return np.zeros((0, order), dtype=np.int64)
    pad = np.full(order - 1, pad_id, dtype=np.int64)
    stream = np.concatenate([part for d in docs for part in (pad, np.asarray(d, np.int64))])
    lengths = np.array([len(d) for d in docs])
    starts = np.cumsum(lengths + order - 1) - lengths      # first real token of each doc
    targets = np.concatenate([np.arange(s, s + n) for s, n in zip(starts, lengths,
                                                                     strict=True)])
    return np.stack([stream[targets - (order - 1 - j)] for j in range(order)], axis=1)


def encode(cols: np.ndarray, vocab_size: int, order: int) -> np.ndarray:
    """One int64 key per row of token columns (exact base-V when V**order fits in int64)."""
    if cols.shape[1] == 0:
        return np.zeros(len(cols), dtype=np.int64)
    if vocab_size ** order < 2**62:
        key = np.zeros(len(cols), dtype=np.int64)
        for j in range(cols.shape[1]):
            key = key * vocab_size + cols[:, j]
        return key
    h = np.zeros(len(cols), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(cols.shape[1]):
            h = (h + cols[:, j].astype(np.uint64) + np.uint64(1)) * _HASH_MUL
            h ^= h >> np.uint64(29)
    return h.view(np.int64)


def _lookup(sorted_keys: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index, found) of each query in a sorted unique key array."""
    idx = np.searchsorted(sorted_keys, queries)
    idx = np.minimum(idx, max(len(sorted_keys) - 1, 0))
    found = (sorted_keys[idx] == queries) if len(sorted_keys) else np.zeros(len(queries), bool)
    return idx, found


def modified_discounts(counts: np.ndarray, min_discount: float) -> np.ndarray:
    """[0, D1, D2, D3+] from counts-of-counts (Chen & Goodman), clipped to [min, r]."""
    n = [np.count_nonzero(counts == r) for r in range(1, 5)]
    with np.errstate(divide="ignore", invalid="ignore"):
        y = n[0] / (n[0] + 2 * n[1]) if n[0] + 2 * n[1] else np.nan
        raw = [1 - 2 * y * n[1] / n[0] if n[0] else np.nan,
               2 - 3 * y * n[2] / n[1] if n[1] else np.nan,
               3 - 4 * y * n[3] / n[2] if n[2] else np.nan]
    out = [0.0]
    for r, d in enumerate(raw, start=1):
        d = 0.5 * r if not np.isfinite(d) else float(d)
        out.append(float(np.clip(d, min_discount, r)))
    return np.asarray(out)


@dataclass
class _Level:
    """Statistics of one order k: gram keys and counts, and per-context sums."""

    gram_keys: np.ndarray
    gram_counts: np.ndarray
    ctx_keys: np.ndarray
    ctx_total: np.ndarray
    ctx_gamma_mass: np.ndarray   # D1 N1 + D2 N2 + D3 N3+ per context
    discounts: np.ndarray        # [0, D1, D2, D3+]


class KneserNeyModel:
    """Fitted n-gram model; ``prob(windows)`` gives p(last column | previous columns)."""

    def __init__(self, order: int, vocab_size: int, discount: float | None = None,
                 min_discount: float = 0.05) -> None:
        if order < 1:
            raise ValueError("order must be >= 1")
        self.order = order
        self.vocab_size = vocab_size
        self.discount = discount
        self.min_discount = min_discount
        self.levels: list[_Level] = []

    def _discounts(self, counts: np.ndarray) -> np.ndarray:
        if self.discount is None:
            return modified_discounts(counts, self.min_discount)
        return np.minimum(np.full(4, float(self.discount)), np.arange(4.0))

    def fit(self, win: np.ndarray) -> KneserNeyModel:
        if len(win) == 0:
            raise ProxyError("no training tokens")
        n, vocab = self.order, self.vocab_size
        self.levels = []
        for k in range(1, n + 1):
            grams = encode(win[:, n - k:], vocab, k)
            if k == n:
                keys, rows, counts = np.unique(grams, return_index=True, return_counts=True)
            else:   # continuation counts: distinct (k+1)-grams ending in this k-gram
                _, longer_rows = np.unique(encode(win[:, n - k - 1:], vocab, k + 1),
                                           return_index=True)
                keys, first, counts = np.unique(grams[longer_rows], return_index=True,
                                                return_counts=True)
                rows = longer_rows[first]
            discounts = self._discounts(counts)
            ctx = encode(win[rows, n - k:n - 1], vocab, k - 1)
            ctx_keys, inverse = np.unique(ctx, return_inverse=True)
            total = np.bincount(inverse, weights=counts).astype(np.float64)
            mass = np.bincount(inverse, weights=discounts[np.minimum(counts, 3)])
            self.levels.append(_Level(keys, counts.astype(np.float64), ctx_keys, total,
                                      mass, discounts))
        return self

    def prob(self, win: np.ndarray) -> np.ndarray:
        """p(win[:, -1] | win[:, :-1]) for each row (context columns may be padding ids)."""
        n, vocab = self.order, self.vocab_size
        if win.shape[1] != n:
            raise ValueError(f"expected windows of width {n}, got {win.shape[1]}")
        p = np.full(len(win), 1.0 / vocab)
        for k, lvl in enumerate(self.levels, start=1):
            gi, gfound = _lookup(lvl.gram_keys, encode(win[:, n - k:], vocab, k))
            count = np.where(gfound, lvl.gram_counts[gi], 0.0)
            ci, cfound = _lookup(lvl.ctx_keys, encode(win[:, n - k:n - 1], vocab, k - 1))
            total = np.where(cfound, lvl.ctx_total[ci], 0.0)
            mass = np.where(cfound, lvl.ctx_gamma_mass[ci], 0.0)
            disc = lvl.discounts[np.minimum(count, 3).astype(np.int64)]
            safe = np.where(total > 0, total, 1.0)
            own = np.maximum(count - disc, 0.0) / safe
            p = np.where(total > 0, own + (mass / safe) * p, p)
        return p


class NgramTrainer(ProxyTrainer):
    """Kneser–Ney n-gram proxy (``order`` 3 by default; ``discount`` None = modified KN)."""

    name = "ngram"

    def __init__(self, order: int = 3, discount: float | None = None,
                 min_discount: float = 0.05) -> None:
        self.order = order
        self.discount = discount
        self.min_discount = min_discount

    def fit_evaluate(self, train: TrainingData, validation: ValidationSet, *,
                     return_logprobs: bool = False, work_dir: Path | None = None) -> ProxyResult:
        start = time.perf_counter()
        corpus = train.load()
        docs = train.documents()
        model = KneserNeyModel(self.order, corpus.vocab_size, self.discount,
                               self.min_discount).fit(windows(docs, self.order, corpus.eos_id))
        val = validation.load()
        if val.vocab_size != corpus.vocab_size:
            raise ProxyError("training and validation caches use different tokenizers")
        logprobs = np.log(model.prob(windows(val.docs(), self.order, val.eos_id)))
        losses, mean = losses_from_logprobs(val, logprobs)
        return ProxyResult(losses=losses, mean_loss=mean,
                           n_train_tokens=int(sum(len(d) for d in docs)),
                           seconds=time.perf_counter() - start,
                           token_logprobs=logprobs if return_logprobs else None)
