"""Training data for mixture runs: exact per-domain token budgets over a token cache.

A proxy trained on mixture lambda with budget B must see lambda_d x B tokens of domain d.
``TrainingData``'s own budget cuts the *shuffled union* of documents, which would let the
shuffle decide the per-domain split; ``BudgetedData`` instead fixes the tokens used from
every chosen document up front (documents drawn per domain with a seed, the last one cut
short), so every trainer that reads ``ordered_rows``/``documents`` gets the exact split.
A domain asked for more tokens than it has is repeated (another seeded permutation per
epoch), the way a pretraining job would repeat it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from metamix.base.errors import UserError
from metamix.mixtures.proxies import TokenizedCorpus, TrainingData, build_token_cache
from metamix.pipeline.runner import proxy_inputs

if TYPE_CHECKING:   # proxy workers unpickle BudgetedData: keep their imports light
    from metamix.pipeline.config import PipelineConfig


@dataclass(frozen=True)
class BudgetedData(TrainingData):
    """``doc_indices`` with the tokens used from each (``row_tokens``); seed = order only."""

    row_tokens: np.ndarray | None = None

    def ordered_rows(self) -> tuple[np.ndarray, np.ndarray]:
        rows = np.asarray(self.doc_indices, dtype=np.int64)
        used = np.asarray(self.row_tokens, dtype=np.int64)
        order = np.random.default_rng(self.seed).permutation(len(rows))
        return rows[order], used[order]


@dataclass(frozen=True)
class DomainIndex:
    """Rows (non-empty documents) and token counts of each training domain, sorted by name."""

    domains: list[str]
    rows: dict[str, np.ndarray]
    lengths: np.ndarray       # tokens of every cache row

    @classmethod
    def of(cls, corpus: TokenizedCorpus) -> DomainIndex:
        lengths = corpus.doc_lengths().astype(np.int64)
        domains = sorted({str(d) for d in corpus.domains})
        rows = {d: np.flatnonzero((corpus.domains == d) & (lengths > 0)) for d in domains}
        return cls(domains, rows, lengths)

    def available(self) -> np.ndarray:
        """Tokens per domain (float64, in ``domains`` order)."""
        return np.array([self.lengths[self.rows[d]].sum() for d in self.domains], np.float64)


def token_allocation(weights: np.ndarray, budget: int) -> np.ndarray:
    """Integer tokens per domain summing to ``budget`` (largest remainder rounding)."""
    w = np.asarray(weights, dtype=np.float64)
    exact = w / w.sum() * budget
    out = np.floor(exact).astype(np.int64)
    short = int(budget - out.sum())
    if short > 0:
        out[np.argsort(-(exact - out), kind="stable")[:short]] += 1
    return out


def draw_domain_tokens(rows: np.ndarray, lengths: np.ndarray, want: int,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Seeded documents of one domain totalling exactly ``want`` tokens (repeats if needed)."""
    chosen: list[np.ndarray] = []
    used: list[np.ndarray] = []
    remaining = int(want)
    while remaining > 0:
        if len(rows) == 0:
            raise UserError("a mixture gives weight to a domain without tokens")
        perm = rng.permutation(rows)
        lens = lengths[perm]
        cum = np.cumsum(lens)
        k = min(int(np.searchsorted(cum, remaining)) + 1, len(perm))
        take = lens[:k].copy()
        take[-1] -= max(int(cum[k - 1]) - remaining, 0)
        chosen.append(perm[:k])
        used.append(take)
        remaining -= int(take.sum())
    if not chosen:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(chosen), np.concatenate(used)


def mixture_data(cache: str, index: DomainIndex, weights: np.ndarray, budget: int,
                 seed: int) -> BudgetedData:
    """Training data for one mixture: domain d gets ``token_allocation(...)[d]`` tokens."""
    tokens = token_allocation(weights, budget)
    parts = [draw_domain_tokens(index.rows[d], index.lengths, int(tokens[i]),
                                np.random.default_rng([seed, i]))
             for i, d in enumerate(index.domains)]
    rows = np.concatenate([p[0] for p in parts])
    used = np.concatenate([p[1] for p in parts])
    return BudgetedData(corpus=cache, doc_indices=rows, token_budget=int(used.sum()), seed=seed,
                        row_tokens=used)


def build_caches(cfg: PipelineConfig) -> tuple[Path, Path]:
    """Token caches of the scored train shards and the validation shards (cached by hash)."""
    scored, valid, tokenizer = proxy_inputs(cfg, "mix")
    root = cfg.resolve(cfg.out_dir) / "_cache" / "tokens"
    return build_token_cache(scored, tokenizer, root), build_token_cache(valid, tokenizer, root)
