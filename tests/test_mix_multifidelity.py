"""Multi-fidelity search: fidelity-aware pools, skipping runs, trust, and a useless cheap level."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch

from metamix.base.errors import UserError
from metamix.mixtures.mix.cli import add_mix_parser, cmd_mix
from metamix.mixtures.mix.mfplan import _probes, plan
from metamix.mixtures.mix.multifidelity import (
    FidelityLevels,
    LevelTrust,
    assess_levels,
    paired_rank_corr,
)
from metamix.mixtures.mix.runs_table import load_runs_table, write_runs_table

torch.set_num_threads(1)
OPT = np.array([0.5, 0.3, 0.2])
DOMAINS = ["web", "code", "books"]


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="metamix")
    add_mix_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["mix", *argv])


def target_loss(w: np.ndarray) -> np.ndarray:
    return -(OPT * np.log(w + 1e-3)).sum(axis=1)


def unrelated_loss(w: np.ndarray) -> np.ndarray:
    """A smooth function of the mixture with its optimum elsewhere (books-heavy)."""
    return -(np.array([0.1, 0.1, 0.8]) * np.log(w + 1e-3)).sum(axis=1)


def test_paired_rank_corr_and_trust_by_hand() -> None:
    w = np.eye(3)[[0, 1, 2, 0, 1, 2]] * 0.7 + 0.1
    level = np.array([1, 1, 1, 0, 0, 0])
    # target losses 1, 2, 3 and cheap losses 10, 30, 20 on the same three mixtures
    losses = np.array([1.0, 2.0, 3.0, 10.0, 30.0, 20.0])
    rho, pairs = paired_rank_corr(w, level, losses, cheap=0, target=1)
    assert pairs == 3 and rho == pytest.approx(0.5)   # ranks (1,3,2) vs (1,2,3)
    trust = assess_levels(w, level, losses, FidelityLevels((0.1, 1.0), (0.1, 1.0)))
    assert not trust[0].trusted and "3 of 5 pairs" in trust[0].reason


def test_probes_stay_within_the_allowance() -> None:
    trust = [LevelTrust(0.18, 0.18, 0, 0, np.nan), LevelTrust(0.48, 0.48, 0, 0, np.nan)]
    probe_level = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    # allowance 0.4 (10% of 4 target runs): 0.18 first (fewest pairs, cheapest), then 0.48
    # does not fit in the 0.22 left, so a second 0.18 probe: 0.36 in all.
    assert _probes(probe_level, trust, 0.4, limit=8) == [0, 1]
    assert _probes(probe_level, trust, 0.1, limit=8) == []
    assert _probes(probe_level, trust, 10.0, limit=3) == [0, 4, 1]


def _loop(pool: np.ndarray, cheap: np.ndarray, truth: np.ndarray, multi: bool,
          budget: float = 30.0) -> float:
    """Cost until the pool's best target mixture is run at the target (cheap run = 0.1)."""
    levels = FidelityLevels((0.1, 1.0), (0.1, 1.0))
    best = int(np.argmin(truth))
    runs: list[tuple[int, int]] = [(i, 1) for i in (0, 1, 2)]
    spent = 3.0
    while (best, 1) not in runs and spent < budget:
        cand = [(i, lv) for lv in ((0, 1) if multi else (1,)) for i in range(len(pool))
                if (i, lv) not in runs]
        idx = np.array([i for i, _ in runs])
        lvl = np.array([lv for _, lv in runs])
        losses = np.where(lvl == 1, truth[idx], cheap[idx])
        result = plan(pool[idx], lvl, losses, levels, n=1, seed=0, surrogate="gp",
                      candidates=(pool[[i for i, _ in cand]], np.array([v for _, v in cand])))
        i, lv = cand[int(result.index[0])]
        runs.append((i, lv))
        spent += levels.costs[lv]
    return spent if (best, 1) in runs else budget + 1


def test_useless_cheap_fidelity_costs_little_over_single_fidelity() -> None:
    from scipy.stats import spearmanr

    pool = np.random.default_rng(5).dirichlet(np.ones(3), size=24)
    truth, other = target_loss(pool), unrelated_loss(pool)
    lo, hi = -3.0, 3.0              # other + a * truth, with a making the ranks unrelated
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if spearmanr(truth, other + mid * truth).statistic < 0 else (lo, mid)
    cheap = other + lo * truth
    assert abs(spearmanr(truth, cheap).statistic) < 0.05
    single = _loop(pool, cheap, truth, multi=False)
    multi = _loop(pool, cheap, truth, multi=True)
    assert single <= 15                       # the problem is solvable
    assert multi <= 1.2 * single, (multi, single)


def test_trusted_cheap_level_is_bought() -> None:
    rng = np.random.default_rng(6)
    pool = rng.dirichlet(np.ones(3), size=30)
    truth = target_loss(pool)
    cheap = 2.0 * truth + 1.0                     # a perfect (rank-1) cheap fidelity
    levels = FidelityLevels((0.1, 1.0), (0.1, 1.0))
    idx = np.r_[0:6, 0:6]
    lvl = np.r_[np.ones(6, int), np.zeros(6, int)]
    losses = np.where(lvl == 1, truth[idx], cheap[idx])
    cand = [(i, lv) for lv in (0, 1) for i in range(6, 30)]
    result = plan(pool[idx], lvl, losses, levels, n=4, seed=0,
                  candidates=(pool[[i for i, _ in cand]], np.array([v for _, v in cand])))
    assert result.trust[0].trusted and result.trust[0].pairs == 6
    assert result.trust[0].model_corr > 0.8
    assert result.mode == "multi-fidelity" and (result.levels == 0).any()


@pytest.fixture
def mf_tables(tmp_path: Path) -> tuple[Path, Path, np.ndarray]:
    rng = np.random.default_rng(2)
    w = rng.dirichlet(np.ones(3), size=8)
    runs = write_runs_table(tmp_path / "runs.csv", DOMAINS, np.vstack([w[:5], w[:3]]),
                            losses={"loss": np.r_[target_loss(w[:5]),
                                                  2 * target_loss(w[:3]) + 1]},
                            extra={"fidelity": np.r_[np.ones(5), np.full(3, 0.2)]})
    # pool: w[0..7]; w[5] only at the target, w[6], w[7] only cheap, w[0..4] at both
    pw = np.vstack([w[:5], w[:5], w[5:6], w[6:8]])
    pf = np.r_[np.ones(5), np.full(5, 0.2), [1.0], [0.2, 0.2]]
    pool = write_runs_table(tmp_path / "pool.csv", DOMAINS, pw, extra={"fidelity": pf})
    return runs, pool, w


def test_fidelity_aware_pool_proposes_only_existing_unrun_pairs(
        mf_tables: tuple[Path, Path, np.ndarray], tmp_path: Path) -> None:
    runs, pool, w = mf_tables
    out = tmp_path / "next.csv"
    cmd_mix(_parse("suggest", "--runs", str(runs), "--pool", str(pool), "--n", "6",
                   "--out", str(out)))
    got = load_runs_table(out, require_losses=False)
    done = {(round(f, 9), tuple(np.round(r, 9))) for r, f in
            zip(np.vstack([w[:5], w[:3]]), np.r_[np.ones(5), np.full(3, 0.2)], strict=True)}
    exists = {(1.0, tuple(np.round(r, 9))) for r in w[:6]} | \
        {(0.2, tuple(np.round(r, 9))) for r in np.vstack([w[:5], w[6:8]])}
    pairs = {(round(f, 9), tuple(np.round(r, 9))) for r, f in
             zip(got.weights, got.fidelity, strict=True)}
    assert pairs and pairs <= exists - done
    assert len(pairs) == got.n_runs                 # no pair proposed twice


def test_pool_rows_already_run_are_skipped_by_id(tmp_path: Path) -> None:
    w = np.random.default_rng(3).dirichlet(np.ones(3), size=10)
    ids = np.array([f"m{i}" for i in range(10)], dtype=object)
    runs = write_runs_table(tmp_path / "runs.csv", DOMAINS, w[:6],
                            losses={"loss": target_loss(w[:6])}, extra={"id": ids[:6]})
    # the pool repeats run m5 with weights rounded differently: its id still matches
    pool_w = w.copy()
    pool_w[5] = np.round(pool_w[5], 4) / np.round(pool_w[5], 4).sum()
    pool = write_runs_table(tmp_path / "pool.csv", DOMAINS, pool_w, extra={"id": ids})
    out = tmp_path / "next.csv"
    cmd_mix(_parse("suggest", "--runs", str(runs), "--pool", str(pool), "--n", "4",
                   "--surrogate", "gp", "--out", str(out)))
    proposed = [r["id"] for r in _rows(out)]
    assert sorted(proposed) == ["m6", "m7", "m8", "m9"]


def test_single_fidelity_pool_skips_rows_already_run(tmp_path: Path) -> None:
    w = np.random.default_rng(4).dirichlet(np.ones(3), size=9)
    runs = write_runs_table(tmp_path / "runs.csv", DOMAINS, w[:6],
                            losses={"loss": target_loss(w[:6])})
    pool = write_runs_table(tmp_path / "pool.csv", DOMAINS, w)      # 6 of 9 already run
    chosen = cmd_mix(_parse("suggest", "--runs", str(runs), "--pool", str(pool), "--n", "3",
                            "--surrogate", "gp"))
    assert sorted(int(np.abs(w - row).max(axis=1).argmin()) for row in chosen) == [6, 7, 8]
    with pytest.raises(UserError, match="every .* has been run"):
        cmd_mix(_parse("suggest", "--runs", str(runs), "--pool",
                       str(write_runs_table(tmp_path / "p2.csv", DOMAINS, w[:6]))))


def _rows(path: Path) -> list[dict]:
    import pyarrow.csv as pa_csv

    return pa_csv.read_csv(path).to_pylist()


def test_fit_is_per_fidelity_level(tmp_path: Path) -> None:
    w = np.random.default_rng(7).dirichlet(np.ones(3), size=24)
    fid = np.r_[np.ones(12), np.full(12, 0.3)]
    loss = np.where(fid == 1, target_loss(w), 5 + 3 * unrelated_loss(w))
    runs = write_runs_table(tmp_path / "runs.csv", DOMAINS, w, losses={"loss": loss},
                            extra={"fidelity": fid})
    out = cmd_mix(_parse("fit", "--runs", str(runs), "--surrogate", "loglinear",
                         "--folds", "3"))
    # each level is its own fit; pooled, the offset between levels would dominate
    assert set(out) == {"loglinear@1", "loglinear@0.3"}
    assert out["loglinear@1"]["spearman"] > 0.9 and out["loglinear@0.3"]["spearman"] > 0.9


def test_continuous_multi_fidelity_probes_a_new_level(tmp_path: Path) -> None:
    w = np.random.default_rng(8).dirichlet(np.ones(3), size=6)
    runs = write_runs_table(tmp_path / "runs.csv", DOMAINS, w,
                            losses={"loss": target_loss(w)})          # target runs only
    out = tmp_path / "next.csv"
    chosen = cmd_mix(_parse("suggest", "--runs", str(runs), "--fidelities", "0.2,1",
                            "--n", "4", "--surrogate", "gp", "--out", str(out)))
    got = load_runs_table(out, require_losses=False)
    np.testing.assert_allclose(chosen.sum(axis=1), 1.0, atol=1e-6)
    # 10% of 6 target runs buys three 0.2 probes at mixtures already run at the target
    # (first runs first), then one target run from single-fidelity BO
    np.testing.assert_allclose(got.fidelity, [0.2, 0.2, 0.2, 1.0])
    np.testing.assert_allclose(got.weights[:3], w[:3], atol=1e-9)
    np.testing.assert_allclose(got.cost, [0.2, 0.2, 0.2, 1.0])
