"""The length-neutral token-budget cut: weights that favour long documents cannot spend a
domain's budget on a few of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from metamix.pipeline.selection.config import Cut
from metamix.pipeline.selection.engine import SelectionEngine, connect
from metamix.pipeline.selection.quota import first_fit, length_band, length_neutral_fit


def test_length_bands_are_exact_powers_of_two() -> None:
    assert length_band(np.array([0, 1, 2, 3, 4, 1023, 1024, 2**40 - 1, 2**40])).tolist() == [
        0, 0, 1, 1, 2, 9, 10, 39, 40]


def test_bands_get_their_share_and_the_rest_is_topped_up_in_rank_order() -> None:
    # one domain, ranked: two 1,000-token documents, then ten of 100; budget 1,000 tokens
    sizes = np.array([1000, 1000] + [100] * 10, dtype=np.int64)
    group = np.zeros(len(sizes), dtype=np.int64)
    budget = np.array([1000], dtype=np.int64)
    # plain first-fit spends the budget on the first long document
    assert first_fit(group, sizes, budget).tolist() == [True] + [False] * 11
    # bands: 512-1023 holds 2,000 of the 3,000 candidate tokens -> 666, too little for one
    # of its documents; 64-127 holds 1,000 -> 333: three short documents. The top-up (700
    # left) skips the long ones and takes the next seven short ones in rank order.
    kept = length_neutral_fit(group, sizes, budget)
    assert kept.tolist() == [False, False] + [True] * 10
    # domains are budgeted apart: 5 and 6 share band 4-7, so domain 0's budget of 6 takes
    # the first in rank order and domain 1's budget of 11 both
    two = length_neutral_fit(np.array([0, 0, 1, 1]), np.array([5, 6, 5, 6]),
                             np.array([6, 11]))
    assert two.tolist() == [True, False, True, True]


def _corpus(path: Path, n: int = 2000, seed: int = 0) -> Path:
    """Document lengths log-uniform over 10..20,000 tokens; ``longness`` = length."""
    rng = np.random.default_rng(seed)
    lengths = np.exp(rng.uniform(np.log(10), np.log(20_000), size=n)).astype(np.int64)
    pq.write_table(pa.table({"id": [f"d{i:05d}" for i in range(n)], "domain": ["web"] * n,
                             "n_tokens": lengths, "longness": lengths.astype(np.float64)}),
                   path)
    return path


def test_a_length_favouring_weighting_keeps_half_of_randoms_documents(tmp_path: Path) -> None:
    scored = _corpus(tmp_path / "scored.parquet")
    con = connect(threads=1)
    engine = SelectionEngine(con, [scored], ["longness"], normalization="minmax")
    total = sum(engine.domain_tokens().values())
    budget = total // 5
    plain = Cut(mode="token_budget", token_budget=budget)
    neutral = Cut(mode="token_budget", token_budget=budget, length_neutral=True)
    random_docs = [engine.select(None, neutral, random_seed=s).kept.num_rows for s in range(8)]
    long_plain = engine.select({"longness": 1.0}, plain)
    long_neutral = engine.select({"longness": 1.0}, neutral)
    assert long_plain.kept.num_rows < 0.2 * np.mean(random_docs)        # collapsed
    assert long_neutral.kept.num_rows >= 0.5 * np.mean(random_docs)     # not collapsed
    # both hold the budget to within one document
    max_doc = 20_000
    for sel in (long_plain, long_neutral):
        got = sum(sel.tokens_per_domain().values())
        assert budget - max_doc < got <= budget
    # and the weighting still decides: the length-neutral cut keeps longer documents than
    # random does within every band
    mean_len = sum(long_neutral.tokens_per_domain().values()) / long_neutral.kept.num_rows
    assert mean_len > sum(engine.select(None, neutral, random_seed=0).tokens_per_domain()
                          .values()) / random_docs[0]
