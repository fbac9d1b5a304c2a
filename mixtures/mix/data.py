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
    def of(cls, corpus: TokenizedCorpus, keep: np.ndarray | None = None) -> DomainIndex:
        """``keep``: a mask over the cache rows (the eligible documents); None keeps all.
        With a mask, a domain none of whose rows it keeps is left out."""
        lengths = corpus.doc_lengths().astype(np.int64)
        domains = sorted({str(d) for d in corpus.domains})
        usable = lengths > 0 if keep is None else (lengths > 0) & keep
        rows = {d: np.flatnonzero((corpus.domains == d) & usable) for d in domains}
        if keep is not None:
            domains = [d for d in domains if len(rows[d])]
            rows = {d: rows[d] for d in domains}
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


@dataclass(frozen=True)
class EligibleIndex:
    """The mixture's view of the corpus: eligible rows per domain, as ``select`` sees them."""

    index: DomainIndex
    available: np.ndarray          # eligible tokens per domain (``select``'s n_tokens)
    all_tokens: dict[str, int]     # tokens per domain before eligibility, every domain
    digest: str | None             # of the eligible rows; None when every row is eligible
    empty: list[str]               # domains without eligible documents (weight 0)


def eligible_index(cfg: PipelineConfig, corpus: TokenizedCorpus) -> EligibleIndex:
    """Restrict the token cache of the scored shards to the documents ``select`` may ship
    (``metamix.pipeline.selection.eligible``: select.where, dedup, select.hard_filters)."""
    import hashlib

    import pyarrow as pa
    import pyarrow.compute as pc

    from metamix.pipeline.selection import SelectionError
    from metamix.pipeline.selection.eligible import Eligibility, eligible_pool

    scored, _, _ = proxy_inputs(cfg, "mix")
    sel = cfg.select
    try:
        pool = eligible_pool(Eligibility.of(sel), scored,
                             memory_limit=sel.duckdb_memory_limit if sel else "2GB",
                             threads=sel.duckdb_threads if sel else None)
    except SelectionError as exc:
        raise UserError(f"mix: the eligible documents (select:): {exc}") from None
    keep = pc.is_in(pa.array(corpus.ids, pa.string()), value_set=pool.ids)
    mask = np.asarray(keep.to_numpy(zero_copy_only=False), dtype=bool)
    index = DomainIndex.of(corpus, None if mask.all() else mask)
    if len(index.domains) < 2:
        raise UserError(f"mix: {len(index.domains)} domain(s) with eligible documents "
                        f"({', '.join(index.domains) or 'none'}; select.where, "
                        "select.hard_filters and dedup drop the rest): a mixture needs two")
    digest = (None if mask.all() else
              hashlib.sha256(np.packbits(mask).tobytes()).hexdigest()[:16])
    return EligibleIndex(index,
                         np.array([pool.tokens[d] for d in index.domains], np.float64),
                         dict(pool.all_tokens),
                         digest, sorted(set(pool.tokens) - set(index.domains)))


def build_caches(cfg: PipelineConfig) -> tuple[Path, Path]:
    """Token caches of the scored train shards and the validation shards (cached by hash)."""
    scored, valid, tokenizer = proxy_inputs(cfg, "mix")
    root = cfg.resolve(cfg.out_dir) / "_cache" / "tokens"
    return build_token_cache(scored, tokenizer, root), build_token_cache(valid, tokenizer, root)
