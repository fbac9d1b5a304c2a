"""`metamix mix fit|suggest|optimize`: surrogates and search on a runs table.

Wiring (metamix/cli): ``add_mix_parser(sub)`` adds the ``mix`` subcommand with its own
sub-subcommands; dispatch with ``cmd_mix(args, console)``. User errors raise ``UserError``.
``fit`` lives here; ``suggest`` and ``optimize`` in ``cli_search``; shared helpers in
``cli_common``.
"""

from __future__ import annotations

import argparse
import math
from typing import TYPE_CHECKING, Any

from metamix.mixtures.mix.names import SUGGEST_SURROGATES, SURROGATES, token_count

if TYPE_CHECKING:
    from rich.console import Console

#: Rows added since the last full fit after which ``suggest``/``optimize`` refit.
DEFAULT_REFIT_EVERY = 16


def add_mix_parser(subparsers: Any) -> Any:
    """Add ``mix`` (with fit / suggest / optimize) to the top-level subparsers; returns
    its own subparsers so the top-level CLI can add ``mix run``.

    Imports nothing heavy (``names`` holds the choices): ``--help`` must not wait for
    torch/BoTorch/SciPy (tests/test_cli_start.py)."""
    mix = subparsers.add_parser("mix", help="domain mixtures: fit surrogates, suggest runs, "
                                "optimize weights from a runs table")
    sub = mix.add_subparsers(dest="mix_command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--runs", required=True, help="runs table (CSV or Parquet)")
        p.add_argument("--target", action="append", default=[], metavar="COL[:WEIGHT]",
                       help="loss column to minimize (repeat for a weighted average; a "
                       "column whose name contains ':' is matched whole first); "
                       "default: the only loss column")
        p.add_argument("--renormalize", action="store_true",
                       help="divide each row's weights by their sum instead of rejecting "
                       "rows that do not sum to 1")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--folds", type=int, default=5, help="K of the K-fold comparisons")

    fit = sub.add_parser("fit", help="K-fold Spearman/MSE of surrogates on the runs "
                         "(per fidelity level when the table has several)")
    common(fit)
    fit.add_argument("--surrogate", action="append", default=[],
                     choices=[*SURROGATES, "all"], help="repeatable; default: all")
    fit.add_argument("--fidelity", type=float, help="fit only the runs at this fidelity")

    for name, helptext in (("suggest", "next runs: Bayesian optimization (multi-fidelity "
                            "when runs or pool have several fidelity levels)"),
                           ("optimize", "predicted-best mixture and its predicted loss")):
        p = sub.add_parser(name, help=helptext)
        common(p)
        p.add_argument("--caps", help="JSON {domain: max weight} (availability caps)")
        p.add_argument("--out", help="write the result (suggest: runs-table CSV/Parquet; "
                       "optimize: mixture JSON for selection.mixture_file)")
        p.add_argument("--refit", action="store_true",
                       help="choose and fit the surrogate afresh instead of reusing the last "
                       "fit kept in <runs folder>/.metamix/")
        p.add_argument("--refit-every", type=_positive, default=DEFAULT_REFIT_EVERY,
                       metavar="K", help="reuse the last fit's surrogate choice and GP "
                       "hyper-parameters while the table only grew by fewer than K runs "
                       f"(default {DEFAULT_REFIT_EVERY})")
    suggest = sub.choices["suggest"]
    suggest.add_argument("--n", type=int, default=1, help="how many runs to propose")
    suggest.add_argument("--pool", help="candidate runs (runs-table format, no losses; "
                         "optional fidelity, cost, id columns): choose from these instead "
                         "of the whole simplex")
    suggest.add_argument("--surrogate", default="auto", choices=["auto", *SUGGEST_SURROGATES],
                         help="model behind the acquisition; auto: the best by K-fold "
                         "Spearman on the runs (single-fidelity search)")
    suggest.add_argument("--fidelities", metavar="F1,F2,...",
                         help="fidelity levels to search over besides those in the runs "
                         "(continuous mode; a pool's fidelity column sets them in pool mode)")
    optimize = sub.choices["optimize"]
    optimize.add_argument("--surrogate", default="auto", choices=["auto", *SURROGATES],
                          help="auto: the best by K-fold Spearman on the runs")
    optimize.add_argument("--candidates", type=int, default=100_000)
    optimize.add_argument("--top-k", type=int, default=100)
    optimize.add_argument("--total-tokens", type=token_count,
                          help="written into the mixture file (e.g. 1e9)")
    optimize.add_argument("--extrapolate", action="store_true",
                          help="search the whole simplex (within --caps); default: no domain "
                          "above the largest weight any run gave it")
    return sub


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def cmd_fit(args: argparse.Namespace, console: Console | None = None) -> dict[str, dict]:
    """K-fold evaluation of each surrogate, per fidelity level; prints and returns
    {name: {spearman, mse}} (keys ``name@fidelity`` when there are several levels)."""
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from metamix.base.errors import UserError
    from metamix.mixtures.mix.cli_common import (
        check_objective,
        load,
        make_for_targets,
        target_matrix,
    )
    from metamix.mixtures.mix.surrogates import kfold_predictions, spearman

    console = console or Console(stderr=True, highlight=False)
    runs, targets, y = load(args)
    names = list(SURROGATES) if not args.surrogate or "all" in args.surrogate \
        else list(dict.fromkeys(args.surrogate))
    fid = runs.fidelity if runs.fidelity is not None else np.ones(runs.n_runs)
    levels = np.unique(fid) if args.fidelity is None else np.array([args.fidelity])
    if args.fidelity is not None and not (np.abs(fid - args.fidelity) <= 1e-12).any():
        raise UserError(f"{args.runs}: no run at fidelity {args.fidelity:g} "
                        f"(levels: {', '.join(f'{f:g}' for f in np.unique(fid))})")
    Y = target_matrix(runs, targets, y)
    # an ensemble is the mean of loglinear and gp fitted the same way (same folds, same
    # warm starts), so with both asked for its K-fold predictions are their mean
    derive = "ensemble" in names and {"gp", "loglinear"} <= set(names)
    results: dict[str, dict] = {}
    table = Table(title=f"{args.folds}-fold CV on {args.runs}"
                  + (", one fit per fidelity level" if len(levels) > 1 else ""))
    for col in ("fidelity", "runs", "surrogate", "Spearman", "MSE"):
        table.add_column(col, justify="left" if col == "surrogate" else "right")
    for level in levels:
        rows = np.abs(fid - level) <= 1e-12
        check_objective(y[rows], runs, max(args.folds, 3),
                        f"{args.folds}-fold evaluation at fidelity {level:g}")
        X = runs.features()[rows]
        preds = {}
        for name in names:
            if name == "ensemble" and derive:
                continue
            preds[name], _ = kfold_predictions(
                lambda name=name: make_for_targets(name, targets, len(runs.domains)),
                X, Y[rows], args.folds, args.seed)
        if derive:  # the members' own out-of-fold predictions, averaged: no second GP fit
            preds["ensemble"] = (preds["gp"] + preds["loglinear"]) / 2
        for name in names:
            pred = preds[name]
            r = {"spearman": spearman(pred, y[rows]),
                 "mse": float(np.mean((pred - y[rows]) ** 2))}
            results[name if len(levels) == 1 else f"{name}@{level:g}"] = r
            table.add_row(f"{level:g}", str(int(rows.sum())), name,
                          "-" if not math.isfinite(r["spearman"]) else f"{r['spearman']:.3f}",
                          f"{r['mse']:.4g}")
    console.print(table)
    if len(levels) > 1:
        console.print("fidelity levels are fitted separately (a proxy's loss sits at another "
                      "level and scale); `mix suggest` uses their rank agreement with the "
                      "target, see its trust table")
    return results


def cmd_mix(args: argparse.Namespace, console: Console | None = None) -> Any:
    """Dispatch ``metamix mix <sub>`` (signature matches metamix.cli.COMMANDS)."""
    from metamix.mixtures.mix.cli_search import cmd_optimize, cmd_suggest

    commands = {"fit": cmd_fit, "suggest": cmd_suggest, "optimize": cmd_optimize}
    return commands[args.mix_command](args, console)
