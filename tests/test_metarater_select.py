"""The in-memory selection picks exactly the ids ``run_selection`` picks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from metamix.mixtures.metarater.scores import (
    load_score_matrix,
    normalize,
    numeric_columns,
    random_selection,
    select_top_fraction,
)
from metamix.mixtures.proxies.synthetic import make_corpus
from metamix.pipeline.selection import SelectConfig, run_selection


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return make_corpus(tmp_path_factory.mktemp("sel"), n_docs=500)["scored"]


def duckdb_ids(paths: list[Path], out: Path, **cfg: object) -> set[str]:
    run_selection(SelectConfig(mode="top_fraction", **cfg), paths, out, progress=False)
    return {i for f in (out / "selected").glob("*.parquet")
            for i in pq.read_table(f, columns=["id"]).column(0).to_pylist()}


def test_default_columns_are_numeric_scores_only(scored: list[Path]) -> None:
    assert numeric_columns(scored) == ["flag_count", "length_score", "noise_score", "quality"]


@pytest.mark.parametrize(("normalization", "per_domain", "filters"), [
    ("minmax", False, ["junk"]), ("percentile", False, []), ("minmax", True, []),
    ("percentile", True, ["junk"]),
])
def test_matches_run_selection(scored: list[Path], tmp_path: Path, normalization: str,
                               per_domain: bool, filters: list[str]) -> None:
    names = numeric_columns(scored)
    matrix = load_score_matrix(scored, names, normalization=normalization, hard_filters=filters)
    rng = np.random.default_rng(7)
    vectors = [dict(zip(names, rng.dirichlet(np.ones(len(names))), strict=True)) for _ in range(2)]
    vectors += [{"flag_count": 1.0}, {"quality": 0.5, "noise_score": -0.25, "flag_count": 0.1}]
    for i, weights in enumerate(vectors):
        mine = select_top_fraction(matrix, weights, 0.15, per_domain=per_domain)
        theirs = duckdb_ids(scored, tmp_path / str(i), weights=weights, fraction=0.15,
                            per_domain=per_domain, hard_filters=filters,
                            normalization=normalization)
        assert set(matrix.ids[mine]) == theirs
        assert len(mine) == len(theirs) > 0


def test_tie_break_by_id_and_rank_order(scored: list[Path]) -> None:
    matrix = load_score_matrix(scored, ["flag_count"])
    kept = select_top_fraction(matrix, {"flag_count": 1.0}, 0.1)
    values = matrix.normalized[kept, 0]
    assert np.all(values == values.max())          # 3 values, so the top 10% is all ties
    assert list(matrix.ids[kept]) == sorted(matrix.ids[kept])


def test_normalize_by_hand() -> None:
    raw = np.array([1.0, 3.0, np.nan, 3.0, 2.0])
    np.testing.assert_allclose(normalize(raw, "minmax"), [0, 5, np.nan, 5, 2.5])
    # percent_rank of [1, 3, 3, 2] with n = 4: ranks 1, 3, 3, 2 -> (r - 1) / 3
    np.testing.assert_allclose(normalize(raw, "percentile"), [0, 5 * 2 / 3, np.nan, 5 * 2 / 3,
                                                              5 / 3])
    assert np.all(normalize(np.array([2.0, 2.0]), "minmax") == 0)


def test_random_selection_is_seeded_sized_and_stratified(scored: list[Path]) -> None:
    matrix = load_score_matrix(scored, ["quality"], hard_filters=["junk"])
    a, b = random_selection(matrix, 0.1, 1), random_selection(matrix, 0.1, 1)
    n_candidates = int(matrix.candidate.sum())               # 500 docs, 22 junk -> 478
    assert n_candidates == 478 and len(a) == 48              # ceil(47.8)
    assert np.array_equal(a, b) and len(set(a)) == 48 and matrix.candidate[a].all()
    assert not np.array_equal(a, random_selection(matrix, 0.1, 2))
    strat = random_selection(matrix, 0.1, 1, per_domain=True)
    top = select_top_fraction(matrix, {"quality": 1.0}, 0.1, per_domain=True)
    for domain in ("web", "code"):
        assert np.sum(matrix.domains[strat] == domain) == np.sum(matrix.domains[top] == domain)
