"""The source-neutral token-budget cut: a weighting that prefers the documents of one source
cannot move a domain's tokens to that source; it only chooses inside each source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from metamix.pipeline.selection.config import Cut
from metamix.pipeline.selection.engine import SelectionEngine, connect
from metamix.pipeline.selection.quota import cut_strata, stratified_fit


def test_each_source_gets_its_share_of_the_budget() -> None:
    # one domain ranked: four 10-token documents of source 0 first, then four of source 1;
    # source 0 holds 40 of 80 candidate tokens -> 20 of a 40-token budget, source 1 the same
    sizes = np.full(8, 10, dtype=np.int64)
    group = np.zeros(8, dtype=np.int64)
    strata = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    kept = stratified_fit(group, strata, sizes, np.array([40], dtype=np.int64))
    assert kept.tolist() == [True, True, False, False, True, True, False, False]


def test_strata_combine_sources_and_length_bands() -> None:
    sizes = np.array([3, 3, 100, 100], dtype=np.int64)
    sources = np.array(["b", "a", "a", "b"], dtype=object)
    both = cut_strata(Cut(length_neutral=True, source_neutral=True), sizes, sources)
    # sources a -> 0, b -> 1; bands of 3 -> 1, of 100 -> 6
    assert both.tolist() == [1 * 64 + 1, 0 * 64 + 1, 0 * 64 + 6, 1 * 64 + 6]
    assert cut_strata(Cut(source_neutral=True), sizes, sources).tolist() == [1, 0, 0, 1]
    assert cut_strata(Cut(), sizes, sources) is None


def _corpus(path: Path, *, with_source: bool = True) -> Path:
    """One domain: 300 documents of 'manual' (score 1) and 700 of 'prose' (score 0), 50
    tokens each, so a score-ranked plain cut takes only manuals."""
    n_manual, n_prose = 300, 700
    columns = {"id": [f"d{i:04d}" for i in range(n_manual + n_prose)],
               "domain": ["web"] * (n_manual + n_prose),
               "n_tokens": np.full(n_manual + n_prose, 50, dtype=np.int64),
               "looks_like_target": np.r_[np.ones(n_manual), np.zeros(n_prose)]
               + np.linspace(0, 0.5, n_manual + n_prose)}
    if with_source:
        columns["source"] = ["manual"] * n_manual + ["prose"] * n_prose
    pq.write_table(pa.table(columns), path)
    return path


def _manual_share(engine: SelectionEngine, cut: Cut) -> float:
    kept = engine.select({"looks_like_target": 1.0}, cut).kept
    ids = set(kept.column("id").to_pylist())
    return sum(1 for i in ids if int(i[1:]) < 300) / len(ids)


@pytest.mark.parametrize("length_neutral", [False, True])
def test_a_source_favouring_weighting_keeps_the_source_mix(tmp_path: Path,
                                                           length_neutral: bool) -> None:
    engine = SelectionEngine(connect(threads=1), [_corpus(tmp_path / "s.parquet")],
                             ["looks_like_target"], normalization="minmax")
    budget = 200 * 50      # 200 of the 1,000 documents
    plain = Cut(mode="token_budget", token_budget=budget, length_neutral=length_neutral)
    neutral = Cut(mode="token_budget", token_budget=budget, length_neutral=length_neutral,
                  source_neutral=True)
    assert _manual_share(engine, plain) == 1.0           # the cut drifts to one source
    assert _manual_share(engine, neutral) == pytest.approx(0.3)   # 60 manuals, 140 prose
    # inside each source the ranking still decides: the highest-scored prose documents
    kept = engine.select({"looks_like_target": 1.0}, neutral).kept
    prose = sorted(int(i[1:]) for i in kept.column("id").to_pylist() if int(i[1:]) >= 300)
    assert prose == list(range(860, 1000))


def test_an_input_without_sources_is_one_source(tmp_path: Path) -> None:
    engine = SelectionEngine(connect(threads=1),
                             [_corpus(tmp_path / "s.parquet", with_source=False)],
                             ["looks_like_target"], normalization="minmax")
    cut = Cut(mode="token_budget", token_budget=200 * 50, source_neutral=True)
    assert _manual_share(engine, cut) == 1.0
