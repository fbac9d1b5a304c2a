"""Interpolated modified Kneser–Ney n-gram models over token ids, estimated with numpy.

One estimator (``kneser_ney_levels``) serves two query forms:

* ``KneserNeyModel``: the plain interpolated model (no pruning), used by the ``ngram`` mixture
  proxy (``mixtures/proxies/ngram.py``);
* ``BackoffNgramModel`` (``fit_kneser_ney``): a pruned, ARPA-like backoff form of the same
  model with save/load, used by the ``ngram_perplexity`` scorer.

KenLM is what CCNet and Meta-rater use for perplexity, but ``pip install kenlm`` gives only
the query library: estimating a model needs the ``lmplz`` binary (a C++/Boost build, not on
PyPI). So we estimate the same kind of model with numpy and query it the way KenLM does.

Estimation (Chen & Goodman 1998, interpolated, modified discounts D1, D2, D3+ per order):

    p_k(w | h) = max(c_k(hw) - D_k(c), 0) / c_k(h.) + gamma_k(h) p_{k-1}(w | h')
    gamma_k(h) = (D1 N1(h.) + D2 N2(h.) + D3 N3+(h.)) / c_k(h.)

with raw counts at the highest order, continuation counts (distinct left extensions) below,
and the unigram level interpolated with the uniform 1/V so every id has a finite loss. A
context never seen falls back to p_{k-1} entirely. Discounts are clipped to [min_discount, r]
so each conditional distribution sums to exactly 1.

Every document is left-padded with n-1 pad ids (``windows``), so n-grams never span two
documents and the first token is predicted from a start context. N-gram keys are exact
base-V int64 integers when V**width fits, else 64-bit hashes (``encode``).

Backoff storage, as in an ARPA file: only n-grams with count >= ``min_count`` (order >= 2;
the default prunes singletons) keep an explicit probability; every other probability backs
off:

    p(w | h) = stored(hw)                      if hw was kept
             = bow(h) p(w | h')                otherwise   (bow = 1 for unknown h)
    bow(h)   = (1 - sum_kept p(w | h)) / (1 - sum_kept p(w | h'))

Kept probabilities interpolate with the already pruned lower order, and bow is computed from
them, so every conditional distribution sums to exactly 1 (the unpruned model with
``min_count=1`` equals the interpolated one up to rounding). The backoff form needs exact keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

_TINY = 1e-300
_HASH_MUL = np.uint64(0x9E3779B97F4A7C15)


def windows(docs: list[np.ndarray], order: int, pad_id: int) -> np.ndarray:
    """(n_tokens, order) int64: each token with its ``order - 1`` predecessors.

    Every document is left-padded with ``pad_id`` so n-grams never span two documents and
    the first token is predicted from a start-of-document context.
    """
    docs = [np.asarray(d, dtype=np.int64) for d in docs if len(d)]
    if not docs:
        return np.zeros((0, order), dtype=np.int64)
    pad = np.full(order - 1, pad_id, dtype=np.int64)
    stream = np.concatenate([part for d in docs for part in (pad, d)])
    lengths = np.array([len(d) for d in docs])
    starts = np.cumsum(lengths + order - 1) - lengths
    targets = np.repeat(starts - np.cumsum(np.r_[0, lengths[:-1]]), lengths) + np.arange(
        lengths.sum())
    return np.stack([stream[targets - (order - 1 - j)] for j in range(order)], axis=1)


def exact_keys(vocab_size: int, width: int) -> bool:
    """Whether ``encode`` gives exact base-V keys (not hashes) for rows of ``width`` ids."""
    return vocab_size ** width < 2**62


def encode(cols: np.ndarray, vocab_size: int) -> np.ndarray:
    """One int64 key per row of token columns: exact base-V code when V**width fits in
    int64 (0 for zero columns), else a 64-bit multiplicative hash."""
    if exact_keys(vocab_size, cols.shape[1]):
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
    if len(sorted_keys) == 0:
        return np.zeros(len(queries), np.int64), np.zeros(len(queries), bool)
    idx = np.minimum(np.searchsorted(sorted_keys, queries), len(sorted_keys) - 1)
    return idx, sorted_keys[idx] == queries


def modified_discounts(counts: np.ndarray, min_discount: float = 0.05) -> np.ndarray:
    """[0, D1, D2, D3+] from counts-of-counts (Chen & Goodman), clipped to [min, r]."""
    n = [np.count_nonzero(counts == r) for r in range(1, 5)]
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
class KneserNeyLevel:
    """Statistics of one order k: k-gram keys and counts, and per-context sums."""

    gram_keys: np.ndarray        # sorted unique keys of the k-grams
    counts: np.ndarray           # int64: raw (k = n) or continuation (k < n) counts
    rows: np.ndarray             # a training window whose last k ids are this k-gram
    ctx_keys: np.ndarray         # sorted unique keys of the (k-1)-id contexts
    ctx_index: np.ndarray        # index into ctx_keys of each k-gram's context
    ctx_total: np.ndarray        # c_k(h.) per context
    ctx_gamma_mass: np.ndarray   # D1 N1 + D2 N2 + D3 N3+ per context
    discounts: np.ndarray        # [0, D1, D2, D3+]


def kneser_ney_levels(win: np.ndarray, vocab_size: int, *, discount: float | None = None,
                      min_discount: float = 0.05) -> list[KneserNeyLevel]:
    """Counts and discounts of orders 1..n (list index k-1) from training windows.

    ``discount`` None = modified KN discounts per order; a number = one fixed discount
    (clipped to r for count r). Computed top-down: the distinct k-grams are the k-id suffixes
    of the distinct (k+1)-grams, each counted once, so lower orders only touch the (much
    fewer) distinct rows of the order above.
    """
    n = win.shape[1]
    if len(win) == 0:
        raise ValueError("no training tokens")
    levels: list[KneserNeyLevel] = []
    rows = np.arange(len(win))
    for k in range(n, 0, -1):
        grams = win[:, n - k:] if k == n else win[rows, n - k:]
        keys, first, counts = np.unique(encode(grams, vocab_size), return_index=True,
                                        return_counts=True)
        rows = rows[first]
        if discount is None:
            disc = modified_discounts(counts, min_discount)
        else:
            disc = np.minimum(np.full(4, float(discount)), np.arange(4.0))
        ctx_keys, ctx_index = np.unique(encode(win[rows, n - k:n - 1], vocab_size),
                                        return_inverse=True)
        levels.append(KneserNeyLevel(
            keys, counts, rows, ctx_keys, ctx_index,
            np.bincount(ctx_index, weights=counts).astype(np.float64),
            np.bincount(ctx_index, weights=disc[np.minimum(counts, 3)]), disc))
    return levels[::-1]


class KneserNeyModel:
    """Unpruned interpolated model; ``prob(windows)`` = p(last column | previous columns)."""

    def __init__(self, order: int, vocab_size: int, discount: float | None = None,
                 min_discount: float = 0.05) -> None:
        if order < 1:
            raise ValueError("order must be >= 1")
        self.order = order
        self.vocab_size = vocab_size
        self.discount = discount
        self.min_discount = min_discount
        self.levels: list[KneserNeyLevel] = []

    def fit(self, win: np.ndarray) -> KneserNeyModel:
        if win.ndim != 2 or win.shape[1] != self.order:
            raise ValueError(f"expected windows of width {self.order}")
        self.levels = kneser_ney_levels(win, self.vocab_size, discount=self.discount,
                                        min_discount=self.min_discount)
        return self

    def prob(self, win: np.ndarray) -> np.ndarray:
        """p(win[:, -1] | win[:, :-1]) for each row (context columns may be padding ids)."""
        n, vocab = self.order, self.vocab_size
        if win.ndim != 2 or win.shape[1] != n:
            raise ValueError(f"expected windows of width {n}, got {win.shape[-1]}")
        p = np.full(len(win), 1.0 / vocab)
        for k, lvl in enumerate(self.levels, start=1):
            gi, gfound = _lookup(lvl.gram_keys, encode(win[:, n - k:], vocab))
            count = np.where(gfound, lvl.counts[gi], 0)
            ci, cfound = _lookup(lvl.ctx_keys, encode(win[:, n - k:n - 1], vocab))
            total = np.where(cfound, lvl.ctx_total[ci], 0.0)
            mass = np.where(cfound, lvl.ctx_gamma_mass[ci], 0.0)
            disc = lvl.discounts[np.minimum(count, 3)]
            safe = np.where(total > 0, total, 1.0)
            own = np.maximum(count - disc, 0.0) / safe
            p = np.where(total > 0, own + (mass / safe) * p, p)
        return p


@dataclass
class BackoffNgramModel:
    """Query side: ``logprob(windows)`` = natural log p(last column | other columns)."""

    order: int
    vocab_size: int
    unigram_logp: np.ndarray                                   # (V,)
    gram_keys: list[np.ndarray] = field(default_factory=list)  # orders 2..n, sorted
    gram_logp: list[np.ndarray] = field(default_factory=list)
    ctx_keys: list[np.ndarray] = field(default_factory=list)   # contexts with a bow
    ctx_logbow: list[np.ndarray] = field(default_factory=list)
    meta: dict[str, object] = field(default_factory=dict)
    #: Kept log-probs are multiples of this (stored as uint16 codes); None = float32.
    logp_step: float | None = None

    def logprob(self, win: np.ndarray) -> np.ndarray:
        n, v = self.order, self.vocab_size
        if win.ndim != 2 or win.shape[1] != n:
            raise ValueError(f"expected windows of width {n}")
        lp = self.unigram_logp[win[:, -1]].astype(np.float64)
        for k in range(2, n + 1):
            gi, gfound = _lookup(self.gram_keys[k - 2], encode(win[:, n - k:], v))
            ci, cfound = _lookup(self.ctx_keys[k - 2], encode(win[:, n - k:n - 1], v))
            bow = np.where(cfound, self.ctx_logbow[k - 2][ci], 0.0)
            lp = np.where(gfound, self.gram_logp[k - 2][gi], lp + bow)
        return lp

    def n_entries(self) -> int:
        return int(sum(len(k) for k in self.gram_keys) + sum(len(k) for k in self.ctx_keys))

    def save(self, path: Path) -> None:
        # Sorted keys are stored as deltas and log-probs as quantization codes: both
        # compress far better than raw int64/float32 (the size limit of a shipped model).
        arrays: dict[str, np.ndarray] = {"unigram_logp": self.unigram_logp.astype(np.float64)}
        for k in range(2, self.order + 1):
            arrays[f"gram_keys_{k}"] = np.diff(self.gram_keys[k - 2], prepend=0)
            logp = self.gram_logp[k - 2]
            arrays[f"gram_logp_{k}"] = (logp.astype(np.float32) if self.logp_step is None
                                        else np.round(-logp / self.logp_step).astype(np.uint16))
            arrays[f"ctx_keys_{k}"] = np.diff(self.ctx_keys[k - 2], prepend=0)
            arrays[f"ctx_logbow_{k}"] = self.ctx_logbow[k - 2].astype(np.float32)
        header = {"order": self.order, "vocab_size": self.vocab_size,
                  "logp_step": self.logp_step, **self.meta}
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, header=np.array(json.dumps(header, sort_keys=True)), **arrays)

    @classmethod
    def load(cls, path: Path) -> BackoffNgramModel:
        with np.load(path) as z:
            header = json.loads(str(z["header"]))
            order, vocab = int(header.pop("order")), int(header.pop("vocab_size"))
            step = header.pop("logp_step")
            ks = range(2, order + 1)
            logps = [z[f"gram_logp_{k}"].astype(np.float64) for k in ks]
            if step is not None:
                logps = [-codes * step for codes in logps]
            return cls(order, vocab, z["unigram_logp"],
                       [np.cumsum(z[f"gram_keys_{k}"]) for k in ks], logps,
                       [np.cumsum(z[f"ctx_keys_{k}"]) for k in ks],
                       [z[f"ctx_logbow_{k}"] for k in ks], header, step)


def fit_kneser_ney(win: np.ndarray, vocab_size: int, *, min_count: int = 2,
                   discount: float | None = None, min_discount: float = 0.05,
                   logp_step: float | None = None) -> BackoffNgramModel:
    """Estimate from training windows (``windows(docs, order, pad_id)``), then prune.

    ``discount`` as in ``kneser_ney_levels``. ``min_count`` applies to each order >= 2 (raw
    counts at the top order, continuation counts below).
    """
    n = win.shape[1]
    if len(win) == 0:
        raise ValueError("no training tokens")
    if not exact_keys(vocab_size, n):
        raise ValueError("vocab_size ** order must fit in int64 for exact keys")
    levels = kneser_ney_levels(win, vocab_size, discount=discount, min_discount=min_discount)

    uni = levels[0]
    disc, counts = uni.discounts, uni.counts
    dense = np.zeros(vocab_size)
    dense[uni.gram_keys] = counts
    total = counts.sum()
    gamma = disc[np.minimum(counts, 3)].sum() / total
    unigram = np.maximum(dense - disc[np.minimum(dense, 3).astype(np.int64)], 0) / total
    model = BackoffNgramModel(n, vocab_size, np.log(unigram + gamma / vocab_size),
                              logp_step=logp_step)

    for k, lvl in enumerate(levels[1:], start=2):
        disc = lvl.discounts
        kept = lvl.counts >= min_count
        keys, counts, inverse = lvl.gram_keys[kept], lvl.counts[kept], lvl.ctx_index[kept]
        lower = np.exp(_partial(model, k - 1).logprob(win[lvl.rows[kept], n - k + 1:]))
        own = (counts - disc[np.minimum(counts, 3)]) / lvl.ctx_total[inverse]
        p = own + lvl.ctx_gamma_mass[inverse] / lvl.ctx_total[inverse] * lower
        if logp_step is not None:
            # Rounding probabilities down keeps sum_kept p <= 1, so bow absorbs the error.
            codes = np.minimum(np.ceil(-np.log(p) / logp_step), np.iinfo(np.uint16).max)
            p = np.exp(-codes * logp_step)
        used, ctx_idx = np.unique(inverse, return_inverse=True)
        kept_p = np.bincount(ctx_idx, weights=p)
        kept_lower = np.bincount(ctx_idx, weights=lower)
        logbow = (np.log(np.maximum(1.0 - kept_p, _TINY))
                  - np.log(np.maximum(1.0 - kept_lower, _TINY)))
        model.gram_keys.append(keys)
        model.gram_logp.append(np.log(p))
        model.ctx_keys.append(lvl.ctx_keys[used])
        model.ctx_logbow.append(logbow)
    return model


def _partial(model: BackoffNgramModel, order: int) -> BackoffNgramModel:
    """The first ``order`` levels of a model being built, as a queryable model."""
    return BackoffNgramModel(order, model.vocab_size, model.unigram_logp,
                             model.gram_keys[:order - 1], model.gram_logp[:order - 1],
                             model.ctx_keys[:order - 1], model.ctx_logbow[:order - 1],
                             logp_step=model.logp_step)
