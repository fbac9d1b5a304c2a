"""`metamix mix fit|suggest|optimize`: surrogates and search on a runs table.

Wiring (metamix/cli): ``add_mix_parser(sub)`` adds the ``mix`` subcommand with its own
sub-subcommands; dispatch with ``cmd_mix(args, console)``. User errors raise ``UserError``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from metamix.base.errors import UserError
from metamix.mixtures.mix.runs_table import RunsTable, load_runs_table
from metamix.mixtures.mix.surrogates import (
    SURROGATES,
    MultiTargetSurrogate,
    Surrogate,
    make_surrogate,
)


def add_mix_parser(subparsers: Any) -> Any:
    """Add ``mix`` (with fit / suggest / optimize) to the top-level subparsers; returns
    its own subparsers so the top-level CLI can add ``mix run``."""
    mix = subparsers.add_parser("mix", help="domain mixtures: fit surrogates, suggest runs, "
                                "optimize weights from a runs table")
    sub = mix.add_subparsers(dest="mix_command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--runs", required=True, help="runs table (CSV or Parquet)")
        p.add_argument("--target", action="append", default=[], metavar="COL[:WEIGHT]",
                       help="loss column to minimize (repeat for a weighted average); "
                       "default: the only loss column")
        p.add_argument("--renormalize", action="store_true",
                       help="divide each row's weights by their sum instead of rejecting "
                       "rows that do not sum to 1")
        p.add_argument("--seed", type=int, default=0)

    fit = sub.add_parser("fit", help="K-fold Spearman/MSE of surrogates on the runs")
    common(fit)
    fit.add_argument("--surrogate", action="append", default=[],
                     choices=[*SURROGATES, "all"], help="repeatable; default: all")
    fit.add_argument("--folds", type=int, default=5)

    for name, helptext in (("suggest", "next mixtures to run (Bayesian optimization)"),
                           ("optimize", "predicted-best mixture and its predicted loss")):
        p = sub.add_parser(name, help=helptext)
        common(p)
        p.add_argument("--caps", help="JSON {domain: max weight} (availability caps)")
        p.add_argument("--out", help="write the result (suggest: runs-table CSV/Parquet; "
                       "optimize: mixture JSON for selection.mixture_file)")
    suggest = sub.choices["suggest"]
    suggest.add_argument("--n", type=int, default=1, help="how many runs to propose")
    suggest.add_argument("--pool", help="candidate mixtures (runs-table format, no losses): "
                         "choose from these instead of the whole simplex")
    optimize = sub.choices["optimize"]
    optimize.add_argument("--surrogate", default="gp", choices=list(SURROGATES))
    optimize.add_argument("--candidates", type=int, default=100_000)
    optimize.add_argument("--top-k", type=int, default=100)
    optimize.add_argument("--total-tokens", type=int, help="written into the mixture file")
    return sub


def _targets(args: argparse.Namespace) -> dict[str, float]:
    out: dict[str, float] = {}
    for spec in args.target:
        col, _, weight = spec.rpartition(":") if ":" in spec else (spec, "", "1")
        try:
            out[col] = float(weight)
        except ValueError:
            raise UserError(f"--target {spec!r}: weight must be a number (COL:WEIGHT)") from None
    return out


def _load(args: argparse.Namespace) -> tuple[RunsTable, np.ndarray]:
    runs = load_runs_table(args.runs, renormalize=args.renormalize)
    targets = _targets(args)
    if targets:
        for col in targets:
            runs.target(col)  # raises on an unknown column
    return runs, runs.objective(targets)


def _surrogate(name: str, runs: RunsTable, args: argparse.Namespace) -> Surrogate:
    targets = _targets(args)
    n_w = len(runs.domains)
    if len(targets) > 1:
        return MultiTargetSurrogate(lambda: make_surrogate(name, n_w),
                                    np.array(list(targets.values())))
    return make_surrogate(name, n_w)


def _fit_xy(runs: RunsTable, args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    targets = _targets(args)
    if len(targets) > 1:
        return runs.features(), np.column_stack([runs.target(c) for c in targets])
    return runs.features(), runs.objective(targets)


def _caps(args: argparse.Namespace, domains: list[str]) -> np.ndarray | None:
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


def cmd_fit(args: argparse.Namespace, console: Console | None = None) -> dict[str, dict]:
    """K-fold evaluation of each surrogate; prints and returns {name: {spearman, mse}}."""
    console = console or Console(stderr=True, highlight=False)
    runs, _ = _load(args)
    X, Y = _fit_xy(runs, args)
    names = list(SURROGATES) if not args.surrogate or "all" in args.surrogate \
        else args.surrogate
    if runs.n_runs < max(args.folds, 3):
        raise UserError(f"{args.runs}: {runs.n_runs} runs; {args.folds}-fold evaluation "
                        f"needs at least {max(args.folds, 3)}")
    y_obj = runs.objective(_targets(args))
    results = {name: _kfold(name, runs, args, X, Y, y_obj) for name in names}
    table = Table(title=f"{args.folds}-fold CV on {runs.n_runs} runs ({args.runs})")
    for col in ("surrogate", "Spearman", "MSE"):
        table.add_column(col)
    for name, r in results.items():
        table.add_row(name, f"{r['spearman']:.3f}", f"{r['mse']:.4g}")
    console.print(table)
    return results


def _kfold(name: str, runs: RunsTable, args: argparse.Namespace, X: np.ndarray,
           Y: np.ndarray, y_obj: np.ndarray) -> dict[str, float]:
    from metamix.mixtures.mix.surrogates import kfold_evaluate, spearman

    if Y.ndim == 1:
        return kfold_evaluate(lambda: _surrogate(name, runs, args), X, Y, args.folds, args.seed)
    # Multi-target: fit per column, score the objective out of fold.
    folds = np.array_split(np.random.default_rng(args.seed).permutation(len(Y)), args.folds)
    pred = np.empty(len(Y))
    for held in folds:
        train = np.setdiff1d(np.arange(len(Y)), held)
        pred[held] = _surrogate(name, runs, args).fit(X[train], Y[train]).predict(X[held])
    return {"spearman": spearman(pred, y_obj), "mse": float(np.mean((pred - y_obj) ** 2))}


def cmd_suggest(args: argparse.Namespace, console: Console | None = None) -> np.ndarray:
    """Propose ``--n`` mixtures (rows of weights); pool mode picks rows of ``--pool``."""
    from metamix.mixtures.mix.emit import write_suggestions
    from metamix.mixtures.mix.search import bo_suggest, bo_suggest_pool, mf_bo_suggest_pool

    console = console or Console(stderr=True, highlight=False)
    runs, y = _load(args)
    if args.n < 1:
        raise UserError(f"--n must be >= 1, got {args.n}")
    caps = _caps(args, runs.domains)
    fid = runs.fidelity
    multi = fid is not None and len(np.unique(fid)) > 1
    fidelity_out = None
    if args.pool:
        pool = load_runs_table(args.pool, require_losses=False, renormalize=args.renormalize)
        if pool.domains != runs.domains:
            raise UserError(f"{args.pool}: w_ columns {pool.domains} differ from {args.runs}'s "
                            f"{runs.domains}")
        cand = pool.weights
        if caps is not None:
            cand = cand[(cand <= caps + 1e-9).all(axis=1)]
            if not len(cand):
                raise UserError(f"{args.pool}: no pool mixture respects the caps")
        if multi:
            levels = tuple(float(f) for f in np.unique(fid))
            costs = tuple(float(np.mean(runs.cost[fid == f])) if runs.cost is not None
                          else float(f) for f in levels)
            picks = mf_bo_suggest_pool(runs.weights, fid, y, cand, levels, costs, n=args.n,
                                       seed=args.seed)
            chosen = cand[[i for i, _ in picks]]
            fidelity_out = np.array([f for _, f in picks])
        else:
            chosen = cand[bo_suggest_pool(runs.weights, y, cand, n=args.n, seed=args.seed)]
    else:
        top = fid == fid.max() if multi else np.ones(runs.n_runs, bool)
        chosen = bo_suggest(runs.weights[top], y[top], n=args.n, caps=caps, seed=args.seed)
    _print_mixtures(console, runs.domains, chosen, "suggested runs", fidelity_out)
    if args.out:
        write_suggestions(args.out, runs.domains, chosen, fidelity_out)
    return chosen


def cmd_optimize(args: argparse.Namespace, console: Console | None = None) -> dict[str, Any]:
    """RegMix search with the chosen surrogate; prints (and writes) the best mixture."""
    from metamix.mixtures.mix.emit import rounded_weights, write_mixture_file
    from metamix.mixtures.mix.search import regmix_search

    console = console or Console(stderr=True, highlight=False)
    runs, _ = _load(args)
    if runs.mde.size:
        raise UserError(f"{args.runs}: optimize cannot recompute mde_ columns for new "
                        "mixtures; drop them or use the Python API with featurize=")
    X, Y = _fit_xy(runs, args)
    surrogate = _surrogate(args.surrogate, runs, args).fit(X, Y)
    prior = runs.weights.mean(axis=0)  # runs were sampled around the prior
    result = regmix_search(surrogate, prior, n_candidates=args.candidates, top_k=args.top_k,
                           seed=args.seed, caps=_caps(args, runs.domains))
    _print_mixtures(console, runs.domains, result.weights[None, :],
                    f"predicted-best mixture (predicted loss {result.predicted_loss:.4f})")
    if args.out:
        write_mixture_file(args.out, runs.domains, result.weights, args.total_tokens,
                           result.predicted_loss, surrogate=args.surrogate)
    return {"weights": rounded_weights(runs.domains, result.weights),
            "predicted_loss": result.predicted_loss}


def _print_mixtures(console: Console, domains: list[str], rows: np.ndarray, title: str,
                    fidelity: np.ndarray | None = None) -> None:
    table = Table(title=title)
    table.add_column("#")
    for d in domains:
        table.add_column(d)
    if fidelity is not None:
        table.add_column("fidelity")
    for i, row in enumerate(rows):
        cells = [str(i + 1), *[f"{w:.4f}" for w in row]]
        table.add_row(*cells, *([f"{fidelity[i]:g}"] if fidelity is not None else []))
    console.print(table)


MIX_COMMANDS = {"fit": cmd_fit, "suggest": cmd_suggest, "optimize": cmd_optimize}


def cmd_mix(args: argparse.Namespace, console: Console | None = None) -> None:
    """Dispatch ``metamix mix <sub>`` (signature matches metamix.cli.COMMANDS)."""
    MIX_COMMANDS[args.mix_command](args, console)
