"""`mix suggest|optimize` keep their last fit beside the runs table (issue 29 item 5).

A second call on the same table, or on one that only grew by fewer than ``--refit-every``
rows, reuses the surrogate choice and the GP hyper-parameters: no K-fold, no L-BFGS, the
same proposals. An ensemble shares the acquisition's GP; ``optimize`` stays inside the
runs' span unless ``--extrapolate``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch
from rich.console import Console

from metamix.mixtures.mix.cli import add_mix_parser, cmd_mix
from metamix.mixtures.mix.fitcache import cache_file
from metamix.mixtures.mix.runs_table import write_runs_table

torch.set_num_threads(1)
DOMAINS = ["web", "code", "books"]
OPT = np.array([0.5, 0.3, 0.2])


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="metamix")
    add_mix_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["mix", *argv])


def _table(path: Path, n: int, seed: int = 0) -> Path:
    w = np.random.default_rng(seed).dirichlet(np.ones(3), size=n)
    return write_runs_table(path, DOMAINS, w, losses={"loss": -(OPT * np.log(w + 1e-3)).sum(1)})


@pytest.fixture
def counts(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How often the K-fold choice and the GP marginal-likelihood fits run."""
    import botorch.fit

    import metamix.mixtures.mix.bo as bo

    seen = {"choose": 0, "mll": 0}
    real_choose, real_fit = bo.choose_surrogate, botorch.fit.fit_gpytorch_mll

    def choose(*a, **k):
        seen["choose"] += 1
        return real_choose(*a, **k)

    def fit(*a, **k):
        seen["mll"] += 1
        return real_fit(*a, **k)

    monkeypatch.setattr(bo, "choose_surrogate", choose)
    monkeypatch.setattr(botorch.fit, "fit_gpytorch_mll", fit)
    return seen


def _suggest(runs: Path, pool: Path, *extra: str) -> tuple[np.ndarray, str]:
    console = Console(record=True, width=200)
    chosen = cmd_mix(_parse("suggest", "--runs", str(runs), "--pool", str(pool), "--n", "2",
                            *extra), console)
    return chosen, console.export_text()


def test_second_suggest_reuses_the_fit_and_proposes_the_same(tmp_path: Path,
                                                             counts: dict[str, int]) -> None:
    runs, pool = _table(tmp_path / "runs.csv", 30), _table(tmp_path / "pool.csv", 40, seed=1)
    first, text = _suggest(runs, pool)
    assert counts["choose"] == 1 and counts["mll"] >= 1
    assert "no earlier fit with these settings" in text
    assert cache_file(str(runs)) == tmp_path / ".metamix" / "fit-runs.csv.json"
    assert cache_file(str(runs)).is_file()
    counts.update(choose=0, mll=0)
    second, text = _suggest(runs, pool)
    assert counts == {"choose": 0, "mll": 0}
    assert "reusing the fit on 30 runs" in text
    np.testing.assert_array_equal(second, first)
    args = _parse("suggest", "--runs", str(runs), "--n", "2")  # continuous: seeded restarts
    np.testing.assert_array_equal(cmd_mix(args, Console(record=True)),
                                  cmd_mix(args, Console(record=True)))


def test_a_grown_table_reuses_until_refit_every(tmp_path: Path, counts: dict[str, int]) -> None:
    pool = _table(tmp_path / "pool.csv", 40, seed=1)
    full = np.random.default_rng(0).dirichlet(np.ones(3), size=34)
    loss = -(OPT * np.log(full + 1e-3)).sum(1)
    runs = tmp_path / "runs.csv"
    write_runs_table(runs, DOMAINS, full[:30], losses={"loss": loss[:30]})
    _suggest(runs, pool, "--refit-every", "4")
    write_runs_table(runs, DOMAINS, full[:33], losses={"loss": loss[:33]})  # 3 new rows
    counts.update(choose=0, mll=0)
    _, text = _suggest(runs, pool, "--refit-every", "4")
    assert counts == {"choose": 0, "mll": 0}
    assert "reusing the fit on 30 runs + 3 new" in text and "refit after 1 more runs" in text
    write_runs_table(runs, DOMAINS, full, losses={"loss": loss})  # 4 new: refit
    _, text = _suggest(runs, pool, "--refit-every", "4")
    assert counts["choose"] == 1 and "4 runs added since the last fit on 30" in text
    counts.update(choose=0, mll=0)
    _, text = _suggest(runs, pool, "--refit-every", "4")  # the refit on 34 is now stored
    assert counts == {"choose": 0, "mll": 0} and "reusing the fit on 34 runs" in text
    _, text = _suggest(runs, pool, "--refit")
    assert counts["choose"] == 1 and "--refit: fitting afresh" in text
    loss[0] += 0.5  # an old row changed: the stored fit no longer describes the table
    write_runs_table(runs, DOMAINS, full, losses={"loss": loss})
    counts.update(choose=0, mll=0)
    _, text = _suggest(runs, pool)
    assert counts["choose"] == 1 and "the table changed since the last fit on 34" in text


def test_ensemble_shares_the_acquisition_gp(tmp_path: Path, counts: dict[str, int]) -> None:
    """An ensemble's GP member is the acquisition's GP (same runs, same fit): one fit,
    where the acquisition GP and a cold ensemble were fitted separately before."""
    runs, pool = _table(tmp_path / "runs.csv", 30), _table(tmp_path / "pool.csv", 40, seed=1)
    _suggest(runs, pool, "--surrogate", "ensemble")
    assert counts["mll"] == 1


def test_optimize_stays_within_the_runs_span(tmp_path: Path) -> None:
    """Loss falls with the code share, but no run gave code more than 0.1: by default the
    proposal keeps code <= 0.1 (the largest weight seen); --extrapolate goes beyond."""
    rng = np.random.default_rng(3)
    code = rng.uniform(0.0, 0.1, 40)
    web = rng.uniform(0, 1, 40) * (1 - code)
    w = np.column_stack([web, code, 1 - web - code])
    loss = 3.0 - 2.0 * code - 0.1 * web
    runs = write_runs_table(tmp_path / "runs.csv", DOMAINS, w, losses={"loss": loss})
    args = ("optimize", "--runs", str(runs), "--surrogate", "linear", "--candidates", "5000")
    console = Console(record=True, width=200)
    inside = cmd_mix(_parse(*args), console)
    assert "within the runs' span" in console.export_text()
    assert inside["weights"]["code"] <= code.max() + 1e-9
    assert inside["weights"]["code"] > 0.09  # the surrogate still wants as much as it may
    outside = cmd_mix(_parse(*args, "--extrapolate"), Console(record=True))
    assert outside["weights"]["code"] > 0.3


def test_optimize_reuses_its_fit(tmp_path: Path, counts: dict[str, int]) -> None:
    runs = _table(tmp_path / "runs.csv", 30)
    args = ("optimize", "--runs", str(runs), "--surrogate", "gp", "--candidates", "3000")
    first = cmd_mix(_parse(*args), Console(record=True))
    assert counts["mll"] == 1
    counts.update(mll=0)
    console = Console(record=True, width=200)
    second = cmd_mix(_parse(*args), console)
    assert counts["mll"] == 0 and "reusing the fit on 30 runs" in console.export_text()
    assert second == first


def test_fit_all_derives_the_ensemble_from_its_members(tmp_path: Path,
                                                       counts: dict[str, int]) -> None:
    """`mix fit` (all surrogates) fitted the GP twice, alone and inside the ensemble; the
    ensemble's K-fold predictions are now its members' mean, equal to fitting it alone."""
    runs = _table(tmp_path / "runs.csv", 30)
    together = cmd_mix(_parse("fit", "--runs", str(runs)), Console(record=True))
    assert counts["mll"] == 1
    alone = cmd_mix(_parse("fit", "--runs", str(runs), "--surrogate", "ensemble"),
                    Console(record=True))
    assert together["ensemble"]["spearman"] == pytest.approx(alone["ensemble"]["spearman"],
                                                             abs=1e-9)
    assert together["ensemble"]["mse"] == pytest.approx(alone["ensemble"]["mse"], rel=1e-6)
