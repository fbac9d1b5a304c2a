"""Runs-table loader: valid files load; each user mistake is one line naming file/column/row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from metamix.base.errors import UserError
from metamix.mixtures.mix.runs_table import load_runs_table, write_runs_table


def _csv(tmp_path: Path, text: str, name: str = "runs.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


GOOD = ("w_web,w_code,fidelity,cost,loss_a,loss_b,mde_web\n"
        "0.7,0.3,1,2.0,3.0,4.0,5\n0.2,0.8,0.5,1.0,2.0,6.0,4\n")


def test_loads_columns_by_role(tmp_path: Path) -> None:
    runs = load_runs_table(_csv(tmp_path, GOOD))
    assert runs.domains == ["web", "code"]
    assert runs.loss_columns == ["loss_a", "loss_b"]
    assert runs.mde_columns == ["mde_web"]
    np.testing.assert_allclose(runs.weights, [[0.7, 0.3], [0.2, 0.8]])
    np.testing.assert_allclose(runs.fidelity, [1.0, 0.5])
    np.testing.assert_allclose(runs.cost, [2.0, 1.0])
    # features = weights then MDE columns
    np.testing.assert_allclose(runs.features(), [[0.7, 0.3, 5], [0.2, 0.8, 4]])
    # weighted objective: (3*1 + 4*3)/4 = 3.75 and (2 + 18)/4 = 5
    np.testing.assert_allclose(runs.objective({"loss_a": 1, "loss_b": 3}), [3.75, 5.0])


def test_parquet_round_trip(tmp_path: Path) -> None:
    path = write_runs_table(tmp_path / "r.parquet", ["a", "b"], np.array([[0.5, 0.5], [1, 0]]),
                            losses={"loss": np.array([1.0, 2.0])})
    runs = load_runs_table(path)
    assert runs.domains == ["a", "b"] and runs.loss_columns == ["loss"]
    np.testing.assert_allclose(runs.target("loss"), [1.0, 2.0])


@pytest.mark.parametrize(("text", "message"), [
    ("loss\n1.0\n", "no weight columns"),
    ("w_a,w_b,loss\n", "empty table"),
    ("w_a,w_b,loss\n0.5,0.5,1\n1.2,-0.2,1\n", "column 'w_b' row 2: negative weight"),
    ("w_a,w_b,loss\n0.5,0.5,1\n0.5,0.4,1\n", "row 2: weights sum to 0.9"),
    ("w_a,w_b,loss\n0.5,0.5,1\n0.5,0.5,\n", "column 'loss' row 2: loss is NaN"),
    ("w_a,w_b,loss,loss\n0.5,0.5,1,2\n", "duplicate column name 'loss'"),
    ("w_a,w_b\n0.5,0.5\n", "no loss columns"),
    ("w_a,w_b,loss,fidelity\n0.5,0.5,1,0\n", "column 'fidelity' row 1"),
    ("w_a,w_b,loss\n0.5,x,1\n", "not numeric"),
])
def test_user_errors_name_file_column_row(tmp_path: Path, text: str, message: str) -> None:
    path = _csv(tmp_path, text)
    with pytest.raises(UserError) as info:
        load_runs_table(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_target_lists_loss_columns(tmp_path: Path) -> None:
    runs = load_runs_table(_csv(tmp_path, GOOD))
    with pytest.raises(UserError, match=r"unknown target column 'nope' \(loss columns: loss_a"):
        runs.target("nope")
    with pytest.raises(UserError, match="2 loss columns"):
        runs.objective()


def test_renormalize_is_opt_in(tmp_path: Path) -> None:
    path = _csv(tmp_path, "w_a,w_b,loss\n50,50,1\n20,60,2\n")
    with pytest.raises(UserError, match="--renormalize"):
        load_runs_table(path)
    runs = load_runs_table(path, renormalize=True)
    np.testing.assert_allclose(runs.weights, [[0.5, 0.5], [0.25, 0.75]])


def test_pool_needs_no_losses_and_missing_file(tmp_path: Path) -> None:
    pool = load_runs_table(_csv(tmp_path, "w_a,w_b\n0.5,0.5\n"), require_losses=False)
    assert pool.losses.shape == (1, 0)
    with pytest.raises(UserError, match="file not found"):
        load_runs_table(tmp_path / "missing.csv")
