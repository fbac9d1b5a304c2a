"""Runs table: the one format every mixture tool here reads (CSV or Parquet).

One row per proxy run. Columns:

* ``w_<domain>``: mixture weights (>= 0, each row sums to 1 within ``SUM_TOLERANCE``);
  at least one is required. Rows that miss 1 by more are an error unless the caller asks
  for ``renormalize=True`` (CLI ``--renormalize``), which divides each row by its sum;
  this is opt-in because a table in percentages or with a missing domain would otherwise
  be silently rescaled.
* ``mde_<domain>``: optional Mixture-of-Data-Experts features (see ``mde.py``), used by
  the surrogates as extra inputs.
* ``fidelity``: optional, in (0, 1], 1 = the target scale (e.g. proxy size / target size).
* ``cost``: optional, > 0, the compute one run cost (any unit, used by cost-aware search).
* ``id`` (or ``run_id``): optional run / candidate identifier (any type); ``suggest``
  matches pool rows to runs by it when both tables have one, else by weights.
* every other numeric column is a loss column (the target(s) to minimise); NaN is an error.
  A text column none of whose values is a number is a label and ignored (``kind``,
  ``model``); a text column with numbers in it is a loss column with a bad cell, an error
  naming the row.

A *pool* file (candidate mixtures for ``suggest --pool``) is the same format without
losses. Every problem raises ``UserError`` with one line naming the file, column and row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from metamix.base.atomic import read_parquet_whole
from metamix.base.errors import UserError

WEIGHT_PREFIX = "w_"
MDE_PREFIX = "mde_"
RESERVED = ("fidelity", "cost")
ID_COLUMNS = ("id", "run_id")
#: How far a row's weights may sum from 1 (rounding in whoever wrote the file).
SUM_TOLERANCE = 1e-3


@dataclass(frozen=True)
class RunsTable:
    """Validated runs: arrays are float64, one row per run, columns in file order."""

    path: str
    domains: list[str]
    weights: np.ndarray  # (n_runs, n_domains)
    loss_columns: list[str]
    losses: np.ndarray  # (n_runs, n_losses); n_losses may be 0 for a pool
    mde_columns: list[str]
    mde: np.ndarray  # (n_runs, n_mde); n_mde may be 0
    fidelity: np.ndarray | None = None
    cost: np.ndarray | None = None
    ids: np.ndarray | None = None  # str per row, from ``id``/``run_id``
    label_columns: tuple[str, ...] = ()

    @property
    def n_runs(self) -> int:
        return int(self.weights.shape[0])

    def target(self, column: str) -> np.ndarray:
        """One loss column by name; an unknown name lists the ones that exist."""
        if column in self.label_columns:
            raise UserError(f"{self.path}: target column {column!r} is not numeric (text)")
        if column not in self.loss_columns:
            known = ", ".join(self.loss_columns) or "none"
            raise UserError(f"{self.path}: unknown target column {column!r} "
                            f"(loss columns: {known})")
        return self.losses[:, self.loss_columns.index(column)]

    def objective(self, targets: dict[str, float] | None = None) -> np.ndarray:
        """Weighted average of loss columns ({column: weight}); default: the only loss column."""
        if not targets:
            if len(self.loss_columns) != 1:
                raise UserError(f"{self.path}: {len(self.loss_columns)} loss columns "
                                f"({', '.join(self.loss_columns)}); name the target(s)")
            return self.losses[:, 0]
        total = sum(targets.values())
        if total <= 0 or any(w < 0 for w in targets.values()):
            raise UserError(f"{self.path}: target weights must be >= 0 with a positive sum")
        return sum(self.target(c) * (w / total) for c, w in targets.items())

    def features(self) -> np.ndarray:
        """Surrogate inputs: weights, then MDE features (if any)."""
        return np.hstack([self.weights, self.mde]) if self.mde.size else self.weights


def _read_table(path: Path) -> pa.Table:
    if not path.exists():
        raise UserError(f"{path}: file not found")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return read_parquet_whole(path)
        return pa_csv.read_csv(path)
    except (pa.ArrowInvalid, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path}: cannot read runs table ({first})") from None


def _column_as_float(table: pa.Table, name: str, path: Path) -> np.ndarray:
    col = table.column(name)
    if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)
            or pa.types.is_null(col.type)):
        raise UserError(f"{path}: column {name!r} is not numeric ({col.type})")
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)


def _first_bad_row(mask: np.ndarray) -> int:
    """Row number as a user counts it in a CSV: 1 = first data row."""
    return int(np.flatnonzero(mask)[0]) + 1


def load_runs_table(path: str | Path, *, require_losses: bool = True,
                    renormalize: bool = False) -> RunsTable:
    """Read and validate a runs (or, with ``require_losses=False``, pool) table."""
    path = Path(path)
    table = _read_table(path)
    names = table.column_names
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UserError(f"{path}: duplicate column name {dupes[0]!r}")
    if table.num_rows == 0:
        raise UserError(f"{path}: empty table (no rows)")
    weight_cols = [n for n in names if n.startswith(WEIGHT_PREFIX)]
    if not weight_cols:
        raise UserError(f"{path}: no weight columns (expected w_<domain>, e.g. w_web)")
    mde_cols = [n for n in names if n.startswith(MDE_PREFIX)]
    id_col = next((n for n in ID_COLUMNS if n in names), None)
    other = [n for n in names if n not in weight_cols and n not in mde_cols
             and n not in RESERVED and n not in ID_COLUMNS]
    loss_cols = [n for n in other if _is_numeric(table, n)]
    labels = [n for n in other if n not in loss_cols]
    for name in labels:
        _check_label(table, name, path)
    if require_losses and not loss_cols:
        ignored = f"; text columns: {', '.join(labels)}" if labels else ""
        raise UserError(f"{path}: no loss columns (any numeric column besides w_*, mde_*, "
                        f"fidelity, cost, id){ignored}")
    weights = np.column_stack([_column_as_float(table, c, path) for c in weight_cols])
    _check_weights(weights, weight_cols, path, renormalize)
    if renormalize:
        weights = weights / weights.sum(axis=1, keepdims=True)
    losses = _numeric_block(table, loss_cols, path, "loss")
    mde = _numeric_block(table, mde_cols, path, "MDE feature")
    fidelity = cost = None
    if "fidelity" in names:
        fidelity = _numeric_block(table, ["fidelity"], path, "fidelity")[:, 0]
        bad = (fidelity <= 0) | (fidelity > 1)
        if bad.any():
            raise UserError(f"{path}: column 'fidelity' row {_first_bad_row(bad)}: "
                            "must be in (0, 1]")
    if "cost" in names:
        cost = _numeric_block(table, ["cost"], path, "cost")[:, 0]
        if (cost <= 0).any():
            raise UserError(f"{path}: column 'cost' row {_first_bad_row(cost <= 0)}: must be > 0")
    ids = None
    if id_col is not None:
        ids = np.array([str(v) for v in table.column(id_col).to_pylist()], dtype=object)
        if (table.column(id_col).null_count or 0) > 0:
            bad = np.array([v is None for v in table.column(id_col).to_pylist()])
            raise UserError(f"{path}: column {id_col!r} row {_first_bad_row(bad)}: id is empty")
    return RunsTable(path=str(path), domains=[c[len(WEIGHT_PREFIX):] for c in weight_cols],
                     weights=weights, loss_columns=loss_cols, losses=losses,
                     mde_columns=mde_cols, mde=mde, fidelity=fidelity, cost=cost, ids=ids,
                     label_columns=tuple(labels))


def _check_label(table: pa.Table, name: str, path: Path) -> None:
    """A text column is a label unless it holds numbers: then it is a loss column with a
    cell that is not one (e.g. "3.1x"), which must not be dropped silently."""
    values = table.column(name).to_pylist()
    numeric = [_is_number(v) for v in values]
    if any(numeric):
        row = next(i for i, ok in enumerate(numeric) if not ok)
        raise UserError(f"{path}: column {name!r} row {row + 1}: {values[row]!r} is not a "
                        "number (a loss column must be numeric throughout)")


def _is_number(value: object) -> bool:
    if value is None:
        return False
    try:
        float(str(value))
    except ValueError:
        return False
    return True


def _is_numeric(table: pa.Table, name: str) -> bool:
    t = table.column(name).type
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_null(t)


def _numeric_block(table: pa.Table, cols: list[str], path: Path, what: str) -> np.ndarray:
    if not cols:
        return np.zeros((table.num_rows, 0))
    block = np.column_stack([_column_as_float(table, c, path) for c in cols])
    bad = ~np.isfinite(block)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise UserError(f"{path}: column {cols[col]!r} row {row + 1}: {what} is NaN or infinite")
    return block


def _check_weights(weights: np.ndarray, cols: list[str], path: Path, renormalize: bool) -> None:
    bad = ~np.isfinite(weights)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise UserError(f"{path}: column {cols[col]!r} row {row + 1}: weight is missing or NaN")
    if (weights < 0).any():
        row, col = np.argwhere(weights < 0)[0]
        raise UserError(f"{path}: column {cols[col]!r} row {row + 1}: negative weight "
                        f"{weights[row, col]:g}")
    sums = weights.sum(axis=1)
    if (sums <= 0).any():
        raise UserError(f"{path}: row {_first_bad_row(sums <= 0)}: all weights are zero")
    off = np.abs(sums - 1.0) > SUM_TOLERANCE
    if off.any() and not renormalize:
        row = _first_bad_row(off)
        raise UserError(f"{path}: row {row}: weights sum to {sums[row - 1]:.6g}, expected 1 "
                        f"(±{SUM_TOLERANCE:g}); pass --renormalize to divide each row by its sum")


def write_runs_table(path: str | Path, domains: list[str], weights: np.ndarray,
                     losses: dict[str, np.ndarray] | None = None,
                     extra: dict[str, np.ndarray] | None = None) -> Path:
    """Write weights (+ loss / fidelity / cost / mde_ / id columns) as CSV or Parquet by
    suffix; text columns (ids) are written as strings, the rest as float64."""
    path = Path(path)
    columns: dict[str, np.ndarray] = {f"{WEIGHT_PREFIX}{d}": np.asarray(weights)[:, i]
                                      for i, d in enumerate(domains)}
    columns.update(extra or {})
    columns.update(losses or {})
    table = pa.table({k: pa.array([str(x) for x in v]) if np.asarray(v).dtype.kind in "OUS"
                      else pa.array(np.asarray(v, dtype=np.float64)) for k, v in columns.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".parquet", ".pq"):
        pq.write_table(table, path)
    else:
        pa_csv.write_csv(table, path)
    return path
