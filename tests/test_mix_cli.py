"""`mix fit|suggest|optimize` through argparse, and the mixture-file emitter round trip."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch

from metamix.base.errors import UserError
from metamix.mixtures.mix.cli import add_mix_parser, cmd_mix
from metamix.mixtures.mix.runs_table import load_runs_table, write_runs_table
from metamix.pipeline.selection.files import load_mixture_file

torch.set_num_threads(1)
OPT = np.array([0.5, 0.3, 0.2])


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="metamix")
    add_mix_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["mix", *argv])


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    w = np.random.default_rng(0).dirichlet(np.ones(3), size=30)
    ce = -(OPT * np.log(w + 1e-3)).sum(axis=1)
    return write_runs_table(tmp_path / "runs.csv", ["web", "code", "books"], w,
                            losses={"val_web": ce, "val_code": 2 * ce})


def test_fit_prints_cv_for_requested_surrogates(runs: Path) -> None:
    out = cmd_mix_ret(_parse("fit", "--runs", str(runs), "--target", "val_web",
                             "--surrogate", "loglinear", "--surrogate", "linear"))
    assert set(out) == {"loglinear", "linear"}
    assert out["loglinear"]["spearman"] > 0.9


def cmd_mix_ret(args: argparse.Namespace):
    return cmd_mix(args, None)


def test_fit_multi_target_weighted(runs: Path) -> None:
    out = cmd_mix_ret(_parse("fit", "--runs", str(runs), "--target", "val_web:1",
                             "--target", "val_code:3", "--surrogate", "loglinear"))
    assert out["loglinear"]["spearman"] > 0.9


def test_optimize_writes_a_mixture_file_selection_reads(runs: Path, tmp_path: Path) -> None:
    caps = tmp_path / "caps.json"
    caps.write_text('{"web": 0.4}')
    out = tmp_path / "mixture.json"
    cmd_mix(_parse("optimize", "--runs", str(runs), "--target", "val_web", "--surrogate",
                   "loglinear", "--candidates", "20000", "--caps", str(caps), "--out", str(out),
                   "--total-tokens", "1000"))
    mixture = load_mixture_file(out)
    assert mixture.total_tokens == 1000
    assert sum(mixture.weights.values()) == pytest.approx(1.0, abs=1e-9)
    assert 0.3 < mixture.weights["web"] <= 0.4 + 1e-6  # optimum 0.5 is capped at 0.4


def test_suggest_pool_and_continuous(runs: Path, tmp_path: Path) -> None:
    pool = write_runs_table(tmp_path / "pool.csv", ["web", "code", "books"],
                            np.random.default_rng(1).dirichlet(np.ones(3), size=40))
    out = tmp_path / "next.csv"
    chosen = cmd_mix_ret(_parse("suggest", "--runs", str(runs), "--target", "val_web",
                                "--pool", str(pool), "--n", "2", "--out", str(out)))
    pool_w = load_runs_table(pool, require_losses=False).weights
    assert all(np.abs(pool_w - row).sum(axis=1).min() < 1e-9 for row in chosen)
    assert load_runs_table(out, require_losses=False).n_runs == 2
    cont = cmd_mix_ret(_parse("suggest", "--runs", str(runs), "--target", "val_web", "--n", "1"))
    assert cont.shape == (1, 3) and abs(cont.sum() - 1) < 1e-6


def test_user_errors(runs: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="unknown target column 'nope'"):
        cmd_mix(_parse("fit", "--runs", str(runs), "--target", "nope"))
    with pytest.raises(UserError, match="2 loss columns"):
        cmd_mix(_parse("fit", "--runs", str(runs)))
    bad_caps = tmp_path / "caps.json"
    bad_caps.write_text('{"web": 0.1, "code": 0.1, "books": 0.1}')
    with pytest.raises(UserError, match="sum to >= 1"):
        cmd_mix(_parse("optimize", "--runs", str(runs), "--target", "val_web",
                       "--caps", str(bad_caps)))


def test_suggest_multi_fidelity_pool(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    w = rng.dirichlet(np.ones(3), size=12)
    fid = np.r_[np.full(9, 0.1), np.full(3, 1.0)]
    loss = -(OPT * np.log(w + 1e-3)).sum(axis=1) + 2 * (1 - fid)
    runs = write_runs_table(tmp_path / "mf.csv", ["web", "code", "books"], w,
                            losses={"loss": loss},
                            extra={"fidelity": fid, "cost": np.where(fid < 1, 0.01, 1.0)})
    pool = write_runs_table(tmp_path / "pool.csv", ["web", "code", "books"],
                            rng.dirichlet(np.ones(3), size=20))
    out = tmp_path / "next.csv"
    cmd_mix(_parse("suggest", "--runs", str(runs), "--pool", str(pool), "--n", "2",
                   "--out", str(out)))
    table = load_runs_table(out, require_losses=False)
    assert table.n_runs == 2 and set(table.fidelity) <= {0.1, 1.0}


# --- regressions (issue 11 item 11, issue 16) -------------------------------------------


def test_target_may_name_a_column_with_colons(tmp_path: Path) -> None:
    w = np.random.default_rng(0).dirichlet(np.ones(3), size=12)
    ce = -(OPT * np.log(w + 1e-3)).sum(axis=1)
    runs = write_runs_table(tmp_path / "runs.csv", ["web", "code", "books"], w,
                            losses={"neg_minerva_math::tulu": ce, "other": -ce})
    out = cmd_mix_ret(_parse("fit", "--runs", str(runs), "--target", "neg_minerva_math::tulu",
                             "--surrogate", "loglinear", "--folds", "3"))
    assert out["loglinear"]["spearman"] > 0.9
    weighted = cmd_mix_ret(_parse("fit", "--runs", str(runs), "--target",
                                  "neg_minerva_math::tulu:2", "--surrogate", "loglinear",
                                  "--folds", "3"))
    assert weighted["loglinear"]["spearman"] > 0.9
    with pytest.raises(UserError, match="'x' after the last ':' is not a weight"):
        cmd_mix(_parse("fit", "--runs", str(runs), "--target", "other:x"))


def test_total_tokens_accepts_scientific_notation(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.json"
    cmd_mix(_parse("optimize", "--runs", str(runs), "--target", "val_web", "--surrogate",
                   "loglinear", "--candidates", "2000", "--out", str(out),
                   "--total-tokens", "1e9"))
    assert load_mixture_file(out).total_tokens == 1_000_000_000
    with pytest.raises(SystemExit):
        _parse("optimize", "--runs", str(runs), "--total-tokens", "1.5")


@pytest.mark.parametrize("command", ["suggest", "optimize"])
def test_too_few_runs_or_constant_losses_are_refused(tmp_path: Path, command: str) -> None:
    w = np.random.default_rng(1).dirichlet(np.ones(3), size=6)
    two = write_runs_table(tmp_path / "two.csv", ["a", "b", "c"], w[:2],
                           losses={"loss": np.array([1.0, 2.0])})
    with pytest.raises(UserError, match="2 run.*needs at least 3"):
        cmd_mix(_parse(command, "--runs", str(two)))
    flat = write_runs_table(tmp_path / "flat.csv", ["a", "b", "c"], w,
                            losses={"loss": np.full(6, 2.5)})
    with pytest.raises(UserError, match="all 6 runs have the same loss"):
        cmd_mix(_parse(command, "--runs", str(flat)))


def test_non_numeric_loss_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "runs.csv"
    path.write_text("w_a,w_b,loss,step\n0.5,0.5,3.1,1\n0.2,0.8,2.9x,2\n0.9,0.1,3.3,3\n")
    with pytest.raises(UserError, match="column 'loss' row 2: '2.9x' is not a number"):
        cmd_mix(_parse("fit", "--runs", str(path)))
    labels = tmp_path / "labels.csv"
    labels.write_text("w_a,w_b,model\n0.5,0.5,small\n0.2,0.8,large\n")
    with pytest.raises(UserError, match="no loss columns.*text columns: model"):
        cmd_mix(_parse("fit", "--runs", str(labels)))


def test_tables_stay_readable_with_many_domains(tmp_path: Path) -> None:
    from rich.console import Console

    domains = [f"domain_{i:02d}" for i in range(20)]
    w = np.random.default_rng(2).dirichlet(np.ones(20), size=12)
    loss = -(np.log(w + 1e-3) * np.linspace(0.01, 0.1, 20)).sum(axis=1)
    runs = write_runs_table(tmp_path / "runs.csv", domains, w, losses={"loss": loss})
    pool = write_runs_table(tmp_path / "pool.csv", domains,
                            np.random.default_rng(3).dirichlet(np.ones(20), size=30))
    console = Console(record=True, width=100)
    chosen = cmd_mix(_parse("suggest", "--runs", str(runs), "--pool", str(pool), "--n", "2",
                            "--surrogate", "gp"), console)
    text = console.export_text()
    assert "…" not in text
    rows = {line.split("│")[1].strip(): line for line in text.splitlines()
            if line.startswith("│ domain_")}
    for d, x in zip(domains, chosen[0], strict=True):
        assert f"{x:.4f}" in rows[d]
