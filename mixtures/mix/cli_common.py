"""Helpers shared by the ``mix`` commands: targets, loading, refusals, caps.

Kept apart from ``cli`` (fit, parser) and ``cli_search`` (suggest, optimize) so neither
imports the other.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from metamix.base.errors import UserError
from metamix.mixtures.mix.names import token_count  # noqa: F401  (re-exported)
from metamix.mixtures.mix.runs_table import RunsTable, load_runs_table
from metamix.mixtures.mix.surrogates import MultiTargetSurrogate, gp_members, make_surrogate


def parse_targets(specs: list[str], runs: RunsTable) -> dict[str, float]:
    """``--target`` values: a whole column name first (names may contain ':'), else
    COL:WEIGHT split at the last ':'."""
    columns = {*runs.loss_columns, *runs.label_columns}
    out: dict[str, float] = {}
    for spec in specs:
        col, sep, weight = spec.rpartition(":")
        if spec in columns or not sep or not col:
            out[spec] = 1.0
            continue
        try:
            out[col] = float(weight)
        except ValueError:
            known = ", ".join(runs.loss_columns) or "none"
            raise UserError(f"--target {spec!r}: no column of that name in {runs.path}, and "
                            f"{weight!r} after the last ':' is not a weight (COL or "
                            f"COL:WEIGHT; loss columns: {known})") from None
    for col in out:
        runs.target(col)  # names an unknown or non-numeric column
    return out


def load(args: argparse.Namespace) -> tuple[RunsTable, dict[str, float], np.ndarray]:
    """The runs, the parsed targets and the objective (weighted mean of the targets)."""
    runs = load_runs_table(args.runs, renormalize=args.renormalize)
    targets = parse_targets(args.target, runs)
    return runs, targets, runs.objective(targets)


def check_objective(y: np.ndarray, runs: RunsTable, needed: int, what: str) -> None:
    """Refuse what no search can use: too few runs, or one loss for all of them."""
    if len(y) < needed:
        raise UserError(f"{runs.path}: {len(y)} run(s); {what} needs at least {needed}")
    if np.ptp(y) == 0:
        raise UserError(f"{runs.path}: all {len(y)} runs have the same loss ({y[0]:.6g}); "
                        "they cannot tell mixtures apart")


def caps_from(args: argparse.Namespace, domains: list[str]) -> np.ndarray | None:
    if not args.caps:
        return None
    try:
        data = json.loads(Path(args.caps).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{args.caps}: cannot read caps JSON ({exc})") from None
    if not isinstance(data, dict):
        raise UserError(f"{args.caps}: expected a JSON object {{domain: max weight}}")
    unknown = sorted(set(data) - set(domains))
    if unknown:
        raise UserError(f"{args.caps}: domain {unknown[0]!r} is not a w_ column of {args.runs}")
    caps = np.array([float(data.get(d, 1.0)) for d in domains])
    if (caps < 0).any() or caps.sum() < 1.0:
        raise UserError(f"{args.caps}: caps must be >= 0 and sum to >= 1 (sum {caps.sum():.4g})")
    return caps


def make_for_targets(name: str, targets: dict[str, float], n_weights: int,
                     gp_states: list[dict] | None = None):
    """A surrogate for the objective: one model per target column when there are several.

    ``gp_states``: hyper-parameters of an earlier fit's GPs (``gp_members`` order): each GP
    takes the next and is only conditioned on the runs (the fit cache's reuse)."""
    states = iter(gp_states or [])

    def make():
        model = make_surrogate(name, n_weights)
        for gp in gp_members(model):
            state = next(states, None)
            if state is not None:
                gp.init, gp.maxiter = state, 0
        return model

    if len(targets) > 1:
        return MultiTargetSurrogate(make, np.array(list(targets.values())))
    return make()


def target_matrix(runs: RunsTable, targets: dict[str, float], y: np.ndarray) -> np.ndarray:
    return np.column_stack([runs.target(c) for c in targets]) if len(targets) > 1 else y
