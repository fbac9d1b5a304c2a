"""Fidelity-aware candidate pools for ``mix suggest --pool``: which runs may be bought.

A pool row is one (mixture, fidelity) pair that *can* be run: with a ``fidelity`` column
the pool says exactly which pairs exist (a mixture offered only at the small size, another
only at the target), and an optional ``cost`` column prices each pair. Without one, every
pool mixture is offered at every fidelity level of the search. Pairs already in the runs
table are dropped: matched on ``id`` when both tables have an id column, else on weights
within ``WEIGHT_MATCH`` and the same fidelity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metamix.base.errors import UserError
from metamix.mixtures.mix.runs_table import RunsTable

#: Two mixtures are the same run when no weight differs by more than this.
WEIGHT_MATCH = 1e-9


@dataclass(frozen=True)
class Candidates:
    """(mixture, fidelity) pairs that may be run next; ``row`` = pool row of each."""

    weights: np.ndarray           # (m, d)
    fidelity: np.ndarray          # (m,)
    cost: np.ndarray | None       # (m,) from the pool's cost column
    ids: np.ndarray | None        # (m,) from the pool's id column
    row: np.ndarray               # (m,) int
    n_pool_rows: int
    n_already_run: int


def same_weights(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) bool: rows equal within ``WEIGHT_MATCH``."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)), bool)
    return np.abs(a[:, None, :] - b[None, :, :]).max(axis=2) <= WEIGHT_MATCH


def run_fidelity(runs: RunsTable) -> np.ndarray:
    """Fidelity of every run (no column: every run is at the target, 1)."""
    return runs.fidelity if runs.fidelity is not None else np.ones(runs.n_runs)


def expand_pool(pool: RunsTable, runs: RunsTable, levels: tuple[float, ...],
                caps: np.ndarray | None = None) -> Candidates:
    """The pool's (mixture, fidelity) pairs that exist, respect caps and were not run."""
    if pool.fidelity is not None:
        w, fid, rows = pool.weights, pool.fidelity, np.arange(pool.n_runs)
        unknown = ~np.isin(np.round(fid, 12), np.round(np.asarray(levels), 12))
        if unknown.any():
            raise UserError(f"{pool.path}: row {int(np.flatnonzero(unknown)[0]) + 1}: fidelity "
                            f"{fid[unknown][0]:g} is not a level of the search {list(levels)}")
    else:
        rows = np.tile(np.arange(pool.n_runs), len(levels))
        w, fid = pool.weights[rows], np.repeat(np.asarray(levels, np.float64), pool.n_runs)
    keep = np.ones(len(rows), bool)
    if caps is not None:
        keep &= (w <= caps + 1e-9).all(axis=1)
        if not keep.any():
            raise UserError(f"{pool.path}: no pool mixture respects the caps")
    done = _already_run(pool, rows, w, fid, runs)
    keep &= ~done
    if not keep.any():
        raise UserError(f"{pool.path}: every (mixture, fidelity) pair of the pool "
                        f"{'within the caps ' if caps is not None else ''}has been run "
                        f"({runs.path})")
    return Candidates(w[keep], fid[keep],
                      pool.cost[rows][keep] if pool.cost is not None else None,
                      pool.ids[rows][keep] if pool.ids is not None else None,
                      rows[keep], pool.n_runs, int(done.sum()))


def _already_run(pool: RunsTable, rows: np.ndarray, w: np.ndarray, fid: np.ndarray,
                 runs: RunsTable) -> np.ndarray:
    rfid = run_fidelity(runs)
    if pool.ids is not None and runs.ids is not None:
        run_keys = {(i, round(float(f), 12)) for i, f in zip(runs.ids, rfid, strict=True)}
        return np.array([(pool.ids[r], round(float(f), 12)) in run_keys
                         for r, f in zip(rows, fid, strict=True)], bool)
    match = same_weights(w, runs.weights) & (np.abs(fid[:, None] - rfid[None, :]) <= 1e-12)
    return match.any(axis=1)


def level_costs(levels: tuple[float, ...], runs: RunsTable,
                pool: RunsTable | None = None) -> tuple[float, ...]:
    """Cost of one run per level: the pool's mean cost there, else the runs', else (no
    cost column anywhere) the fidelity itself, read as the share of a target run's cost.
    A cost column that prices some levels but not others is an error: the two units
    would be mixed."""
    out: list[float | None] = []
    for level in levels:
        cost = None
        for table in (pool, runs):
            if table is None or table.cost is None:
                continue
            fid = table.fidelity if table.fidelity is not None else np.ones(table.n_runs)
            at = np.abs(fid - level) <= 1e-12
            if at.any():
                cost = float(table.cost[at].mean())
                break
        out.append(cost)
    if all(c is None for c in out):
        return tuple(float(level) for level in levels)
    missing = [lv for lv, c in zip(levels, out, strict=True) if c is None]
    if missing:
        where = pool.path if pool is not None and pool.cost is not None else runs.path
        raise UserError(f"{where}: the cost column prices no run at fidelity "
                        f"{', '.join(f'{m:g}' for m in missing)}; give every level a cost "
                        "(or drop the cost columns to use fidelity as the cost)")
    return tuple(float(c) for c in out if c is not None)
