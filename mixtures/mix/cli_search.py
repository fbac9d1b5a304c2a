"""`metamix mix suggest|optimize`: next runs and the predicted-best mixture.

``suggest`` is single-fidelity BO (``bo.suggest``) when runs and pool have one fidelity
level, else multi-fidelity (``mfplan.plan``); both say which model they used and why.
Tables list domains down the rows so they stay readable at 20+ domains.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from metamix.base.errors import UserError
from metamix.mixtures.mix.cli_common import (
    caps_from,
    check_objective,
    load,
    make_for_targets,
    target_matrix,
)
from metamix.mixtures.mix.runs_table import RunsTable, load_runs_table

#: Suggestions per printed table (more go into further tables).
COLUMNS_PER_TABLE = 8


def _levels(args: argparse.Namespace, runs: RunsTable, pool: RunsTable | None) -> tuple[float, ...]:
    from metamix.mixtures.mix.pool import run_fidelity

    values = set(np.round(run_fidelity(runs), 12).tolist())
    if pool is not None and pool.fidelity is not None:
        values |= set(np.round(pool.fidelity, 12).tolist())
    if args.fidelities:
        try:
            extra = [float(f) for f in args.fidelities.split(",") if f.strip()]
        except ValueError:
            raise UserError(f"--fidelities {args.fidelities!r}: expected numbers like "
                            "0.18,0.48,1") from None
        if any(not 0 < f <= 1 for f in extra):
            raise UserError(f"--fidelities {args.fidelities!r}: each must be in (0, 1]")
        values |= set(np.round(extra, 12).tolist())
    return tuple(sorted(values))


def cmd_suggest(args: argparse.Namespace, console: Console | None = None) -> np.ndarray:
    """Propose ``--n`` runs; returns their weights (rows). Multi-fidelity mode also
    prints the trust table and writes a ``fidelity`` column."""
    from metamix.mixtures.mix.emit import write_suggestions

    console = console or Console(stderr=True, highlight=False)
    runs, targets, y = load(args)
    if args.n < 1:
        raise UserError(f"--n must be >= 1, got {args.n}")
    caps = caps_from(args, runs.domains)
    pool = None
    if args.pool:
        pool = load_runs_table(args.pool, require_losses=False, renormalize=args.renormalize)
        if pool.domains != runs.domains:
            raise UserError(f"{args.pool}: w_ columns {pool.domains} differ from {args.runs}'s "
                            f"{runs.domains}")
    levels = _levels(args, runs, pool)
    if len(levels) == 1:
        chosen, fidelity, extra = _single(args, runs, targets, y, pool, levels, caps, console)
    else:
        chosen, fidelity, extra = _multi(args, runs, y, pool, levels, caps, console)
    print_mixtures(console, runs.domains, chosen, "suggested runs", fidelity, extra)
    if args.out:
        write_suggestions(args.out, runs.domains, chosen, fidelity, extra)
    return chosen


def _pool_candidates(args, runs: RunsTable, pool: RunsTable | None, levels, caps, console):
    from metamix.mixtures.mix.pool import expand_pool

    if pool is None:
        return None
    cands = expand_pool(pool, runs, levels, caps)
    if cands.n_already_run:
        console.print(f"pool: {cands.n_already_run} (mixture, fidelity) pair(s) already in "
                      f"{args.runs} skipped; {len(cands.row)} left")
    return cands


def _single(args, runs, targets, y, pool, levels, caps, console):
    from metamix.mixtures.mix.bo import MIN_RUNS, suggest
    from metamix.mixtures.mix.choice import SurrogateChoice, span_warnings
    from metamix.mixtures.mix.fitcache import FitCache

    check_objective(y, runs, MIN_RUNS, "Bayesian optimization")
    cands = _pool_candidates(args, runs, pool, levels, caps, console)
    cache = FitCache(args.runs, _settings("suggest", args, runs, targets), runs.weights, y)
    hit, line = cache.lookup(args.refit_every, args.refit)
    console.print(f"fit: {line}")
    reuse = None if hit is None else SurrogateChoice(hit.name, hit.reason, hit.scores)
    sug = suggest(runs.weights, y, n=args.n, pool=None if cands is None else cands.weights,
                  caps=caps, seed=args.seed, surrogate=args.surrogate, folds=args.folds,
                  choice=reuse, warm=hit.gp[0] if hit and hit.gp else None,
                  maxiter=0 if hit and hit.gp else None)
    console.print(f"surrogate: {sug.choice.name} ({sug.choice.reason})")
    warnings = sug.warnings + span_warnings(runs.domains, sug.weights, runs.weights)
    if hit is None and sug.warm is not None:
        note = cache.store(sug.choice.name, sug.choice.reason, sug.choice.scores, [sug.warm])
        warnings += [note] if note else []
    for line in warnings:
        console.print(f"[yellow]warning:[/yellow] {line}")
    extra = _pool_extra(cands, sug.index) if cands is not None else {}
    return sug.weights, None, extra


def _settings(command: str, args: argparse.Namespace, runs: RunsTable,
              targets: dict[str, float]) -> dict[str, Any]:
    """What a stored fit depends on besides the rows (caps and pool only steer the search)."""
    return {"command": command, "domains": runs.domains, "targets": targets,
            "surrogate": args.surrogate, "folds": args.folds, "seed": args.seed}


def _pool_extra(cands, index: np.ndarray) -> dict[str, np.ndarray]:
    extra: dict[str, np.ndarray] = {}
    if cands.ids is not None:
        extra["id"] = cands.ids[index]
    if cands.cost is not None:
        extra["cost"] = cands.cost[index]
    return extra


def _multi(args, runs, y, pool, levels, caps, console):
    from metamix.mixtures.mix.mfplan import plan
    from metamix.mixtures.mix.multifidelity import FidelityLevels
    from metamix.mixtures.mix.pool import level_costs, run_fidelity

    lv = FidelityLevels(levels, level_costs(levels, runs, pool))
    run_level = lv.index(run_fidelity(runs))
    check_objective(y, runs, 3, "multi-fidelity search")
    cands = _pool_candidates(args, runs, pool, levels, caps, console)
    candidates = None if cands is None else (cands.weights, lv.index(cands.fidelity))
    try:
        result = plan(runs.weights, run_level, y, lv, n=args.n, seed=args.seed,
                      candidates=candidates, caps=caps, run_cost=runs.cost,
                      surrogate=args.surrogate, folds=args.folds)
    except ValueError as exc:
        raise UserError(f"{args.runs}: {exc}") from None
    print_trust(console, result, lv)
    for line in result.notes:
        console.print(f"note: {line}")
    fidelity = np.array([levels[i] for i in result.levels])
    extra = _pool_extra(cands, result.index) if cands is not None else {}
    if "cost" not in extra:
        extra["cost"] = np.array([lv.costs[i] for i in result.levels])
    return result.weights, fidelity, extra


def print_trust(console: Console, result, levels) -> None:
    table = Table(title=f"fidelity levels (target {levels.values[-1]:g}); mode: {result.mode}")
    for col in ("fidelity", "cost", "runs", "pairs", "rank corr", "GP corr", "trusted", "why"):
        table.add_column(col, justify="left" if col == "why" else "right")
    for t in result.trust:
        table.add_row(f"{t.fidelity:g}", f"{t.cost:.3g}", str(t.runs), str(t.pairs),
                      _num(t.pair_rank_corr), _num(t.model_corr), "yes" if t.trusted else "no",
                      t.reason)
    console.print(table)
    if result.choice is not None:
        console.print(f"target runs: single-fidelity BO with {result.choice.name} "
                      f"({result.choice.reason})")


def _num(x: float) -> str:
    return "-" if x is None or not np.isfinite(x) else f"{x:.2f}"


def cmd_optimize(args: argparse.Namespace, console: Console | None = None) -> dict[str, Any]:
    """RegMix search with the K-fold-chosen (or named) surrogate; prints (and writes) the
    predicted-best mixture. Runs below the highest fidelity are left out (and said so)."""
    from metamix.mixtures.mix.bo_models import hyperparameters
    from metamix.mixtures.mix.choice import choose_surrogate, constant_warning, span_warnings
    from metamix.mixtures.mix.emit import rounded_weights, write_mixture_file
    from metamix.mixtures.mix.fitcache import FitCache
    from metamix.mixtures.mix.sampling import dirichlet_candidates
    from metamix.mixtures.mix.search import regmix_search
    from metamix.mixtures.mix.surrogates import SURROGATES, gp_members

    console = console or Console(stderr=True, highlight=False)
    runs, targets, y = load(args)
    if runs.mde.size:
        raise UserError(f"{args.runs}: optimize cannot recompute mde_ columns for new "
                        "mixtures; drop them or use the Python API with featurize=")
    rows = np.ones(runs.n_runs, bool)
    if runs.fidelity is not None and len(np.unique(runs.fidelity)) > 1:
        top = runs.fidelity.max()
        rows = runs.fidelity == top
        console.print(f"optimize: using the {int(rows.sum())} runs at the highest fidelity "
                      f"({top:g}); {int((~rows).sum())} cheaper runs left out")
    check_objective(y[rows], runs, 3, "optimize")
    X, Y = runs.weights[rows], target_matrix(runs, targets, y)[rows]
    cache = FitCache(args.runs, _settings("optimize", args, runs, targets), X, y[rows])
    hit, line = cache.lookup(args.refit_every, args.refit)
    console.print(f"fit: {line}")
    choice, notes = None, []
    if hit is not None:
        name = hit.name
        console.print(f"surrogate: {name} ({hit.reason})")
    elif args.surrogate == "auto":
        choice = choose_surrogate(X, y[rows], tuple(SURROGATES), "gp", len(runs.domains),
                                  args.folds, args.seed)
        name = choice.name
        console.print(f"surrogate: {name} ({choice.reason})")
        notes = list(choice.warnings)
    else:
        name = args.surrogate
    surrogate = _all_runs_fit(name, choice, targets, X, Y, hit.gp if hit else None)
    if hit is None:
        note = cache.store(name, choice.reason if choice else "chosen with --surrogate",
                           choice.scores if choice else {},
                           [hyperparameters(gp.model_) for gp in gp_members(surrogate)])
        notes += [note] if note else []
    caps = _search_caps(args, runs.domains, X, console)
    prior = X.mean(axis=0)  # runs were sampled around the prior
    result = regmix_search(surrogate, prior, n_candidates=args.candidates, top_k=args.top_k,
                           seed=args.seed, caps=caps)
    probe = dirichlet_candidates(prior, 2000, seed=args.seed, caps=caps)
    warn = constant_warning(name, surrogate.predict(probe))
    notes += ([warn] if warn else []) + span_warnings(runs.domains, result.weights[None, :], X)
    for line in notes:
        console.print(f"[yellow]warning:[/yellow] {line}")
    print_mixtures(console, runs.domains, result.weights[None, :],
                   f"predicted-best mixture ({name}; predicted loss "
                   f"{result.predicted_loss:.4f})")
    if args.out:
        write_mixture_file(args.out, runs.domains, result.weights, args.total_tokens,
                           result.predicted_loss, surrogate=name)
    return {"weights": rounded_weights(runs.domains, result.weights),
            "predicted_loss": result.predicted_loss, "surrogate": name}


def _all_runs_fit(name: str, choice, targets: dict[str, float], X: np.ndarray,
                  Y: np.ndarray, gp_states: list[dict] | None):
    """The surrogate on all runs: K-fold's own fit when it made one for this objective (one
    target; an ensemble from its members' fits), else a fit (warm from ``gp_states``)."""
    from metamix.mixtures.mix.bo import lead_model

    fitted = choice.fitted if choice is not None and len(targets) == 1 else {}
    if name in fitted:
        return fitted[name]
    if name == "ensemble" and {"gp", "loglinear"} <= set(fitted):
        return lead_model(choice, X, Y, fitted["gp"].model_)
    return make_for_targets(name, targets, X.shape[1], gp_states).fit(X, Y)


def _search_caps(args: argparse.Namespace, domains: list[str], X: np.ndarray,
                 console: Console) -> np.ndarray | None:
    """``--caps``, and by default each domain's largest weight among the runs: a surrogate
    fitted there knows nothing beyond (issue 29: 0.369 proposed for a domain no run gave
    more than 0.094). The runs' own rows fit these caps, so they are always feasible."""
    caps = caps_from(args, domains)
    if args.extrapolate:
        console.print("search: the whole simplex (--extrapolate)"
                      + (" within --caps" if caps is not None else ""))
        return caps
    span = X.max(axis=0)
    bounded = span if caps is None else np.minimum(span, caps)
    if bounded.sum() < 1.0 - 1e-9:
        raise UserError(f"{args.caps}: with each domain also kept within the runs' largest "
                        f"weight, the caps sum to {bounded.sum():.4g} < 1; pass --extrapolate "
                        "to search beyond the runs")
    console.print("search: within the runs' span (each domain at most its largest weight "
                  "in a run; --extrapolate to go beyond)")
    return bounded


def print_mixtures(console: Console, domains: list[str], rows: np.ndarray, title: str,
                   fidelity: np.ndarray | None = None,
                   extra: dict[str, np.ndarray] | None = None) -> None:
    """One row per domain, one column per mixture (chunks of ``COLUMNS_PER_TABLE``), so
    weights stay legible however many domains there are."""
    rows = np.atleast_2d(rows)
    for start in range(0, len(rows), COLUMNS_PER_TABLE):
        part = range(start, min(start + COLUMNS_PER_TABLE, len(rows)))
        table = Table(title=title if start == 0 else f"{title} (continued)")
        table.add_column("domain", no_wrap=True)
        for i in part:
            table.add_column(f"#{i + 1}", justify="right", no_wrap=True, min_width=6)
        for j, d in enumerate(domains):
            table.add_row(d, *[f"{rows[i, j]:.4f}" for i in part])
        if fidelity is not None:
            table.add_row("[bold]fidelity", *[f"{fidelity[i]:g}" for i in part])
        for key, values in (extra or {}).items():
            table.add_row(f"[bold]{key}", *[_cell(values[i]) for i in part])
        console.print(table)


def _cell(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float | np.floating) else str(value)
