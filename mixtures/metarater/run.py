"""Meta-rater (Zhuang et al. 2025): learn quality-score weights from proxy-model runs.

1. Sample K weight vectors over the score columns (Dirichlet magnitudes; signs from each
   column's declared direction, random for neutral columns).
2. For each, select documents exactly as ``metamix select`` would (the same
   ``SelectionEngine``, mode ``token_budget``: every run holds the same tokens per domain)
   and train a proxy on them; evaluate it on the targets, each split into a fit and a report
   half. Baselines go through the same cut: equal weights, each score alone and independent
   random selections, whose spread puts every target on one scale (``families``).
3. Leave one target family out at a time (``lofo``): fit LightGBM and ridge from weights to
   the other families' fit-half objective, search, shrink towards equal weights, train a
   proxy per shrinkage and judge it on the held-out family's report half.
4. Fit on every family, shrink by the amount the held-out families chose, and ship those
   weights -- or equal weights or the best single score, when they hold up better on
   held-out families -- with ``save_weights_file`` for ``select.weights_file``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from metamix.base.atomic import atomic_path, write_json_atomic
from metamix.base.errors import UserError
from metamix.base.storage import require_local
from metamix.mixtures.metarater.columns import numeric_columns
from metamix.mixtures.metarater.config import MetaraterConfig
from metamix.mixtures.metarater.evaluation import evaluation_docs
from metamix.mixtures.metarater.families import (
    FamilyScale,
    combine,
    families_of,
    family_table,
)
from metamix.mixtures.metarater.fit import importance
from metamix.mixtures.metarater.lofo import Fitted, decide, fit_weights, plan_held_out
from metamix.mixtures.metarater.plan import (
    PlannedRun,
    features_to_weights,
    plan_runs,
    resolve_directions,
    sample_features,
    weights_to_features,
)
from metamix.mixtures.metarater.printing import print_summary
from metamix.mixtures.metarater.summary import build_summary, run_values
from metamix.mixtures.metarater.targets import ValidationTarget, check_targets
from metamix.mixtures.proxies import TrainingData, ValidationSet, build_token_cache
from metamix.mixtures.proxies.evalsets import build_eval_cache
from metamix.mixtures.sweep import ProxyTask, RunsTable, run_sweep
from metamix.pipeline.config import PipelineConfig
from metamix.pipeline.runner import proxy_inputs
from metamix.pipeline.scorer_specs import build_scorers
from metamix.pipeline.selection.config import Cut
from metamix.pipeline.selection.engine import Selection, SelectionEngine, connect
from metamix.pipeline.selection.files import SelectionError, save_weights_file

FIT_KINDS = ("dirichlet",)   # the regressor sees exactly the K sampled vectors


@dataclass
class Context:
    """What every proxy run of one sweep shares."""

    cfg: PipelineConfig
    mcfg: MetaraterConfig
    engine: SelectionEngine
    cut: Cut
    rows_of_id: dict[str, int]
    train_cache: Path
    eval_cache: Path
    out: Path
    key: str
    seed: int
    sources: dict[str, str]
    budgets: dict[str, int] | None = None


@contextmanager
def open_context(cfg: PipelineConfig, mcfg: MetaraterConfig, console: Console
                 ) -> Iterator[tuple[Context, list[str], dict[str, Any]]]:
    """The selection engine and token caches of one sweep, the score columns it weights
    and their directions (benchmarks open it too, to train proxies on other selections)."""
    seed = cfg.seed if mcfg.seed is None else mcfg.seed
    out = cfg.run_dir / "metarater"
    need_validation = any(isinstance(t, ValidationTarget) for t in mcfg.targets)
    scored, valid, tokenizer = proxy_inputs(cfg, "metarater", need_validation)
    for warning in check_targets(mcfg.targets):
        console.print(f"[yellow]warning:[/] metarater.targets: {warning}")
    if cfg.select is not None and cfg.select.where != mcfg.where:
        console.print(f"[yellow]warning:[/] select.where is {cfg.select.where!r} but "
                      f"metarater.where is {mcfg.where!r}: the proxies rank another pool of "
                      "documents than the selection ships")
    for option in ("length_neutral", "source_neutral"):
        if cfg.select is not None and getattr(cfg.select, option) != getattr(mcfg, option):
            console.print(f"[yellow]warning:[/] select.{option} is "
                          f"{getattr(cfg.select, option)} but metarater.{option} is "
                          f"{getattr(mcfg, option)}: the proxies train on other cuts than "
                          "select ships")
    # kept user fields are scores only when input.score_fields gives their direction
    passive = set(cfg.kept_columns()) - set(cfg.score_fields())
    columns = mcfg.scores or [c for c in numeric_columns(scored) if c not in passive]
    declared: dict[str, Any] = dict(cfg.score_fields())
    for scorer in build_scorers(cfg.score.scorers, base_dir=Path(cfg.base_dir)):
        declared.update(scorer.directions())
    spill = out / f".metarater-spill-{os.getpid()}"
    con = connect(threads=2, spill_dir=spill)
    try:
        engine = _engine(con, scored, columns, mcfg)
        names = sorted(mcfg.scores or engine.varying_columns())
        if len(names) < 2:
            raise UserError("metarater: fewer than two score columns vary; nothing to weight")
        directions = resolve_directions(names, declared, mcfg.directions)
        with console.status("tokenizing the corpus and the targets for the proxies (cached)"):
            cache_root = cfg.resolve(cfg.out_dir) / "_cache" / "tokens"
            train_cache = build_token_cache(scored, tokenizer, cache_root)
            eval_cache = build_eval_cache(
                evaluation_docs(cfg, mcfg.targets, valid, mcfg.fit_fraction), tokenizer,
                cache_root)
        ctx = Context(cfg, mcfg, engine, _cut(engine, mcfg), _rows_of_id(train_cache),
                      train_cache, eval_cache, out,
                      mcfg.sweep_key(train_cache.name, eval_cache.name, seed), seed,
                      _sources_of_id(scored))
        yield ctx, names, directions
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)


def run_metarater(cfg: PipelineConfig, mcfg: MetaraterConfig, console: Console
                  ) -> dict[str, Any]:
    """Run the whole loop; write ``<run_dir>/metarater/`` and return the summary."""
    require_local(cfg.run_dir, "metarater")
    started = time.monotonic()
    with open_context(cfg, mcfg, console) as (ctx, names, directions):
        return _sweep_and_fit(ctx, names, directions, console, started)


def _engine(con: Any, scored: list[Path], columns: list[str], mcfg: MetaraterConfig
            ) -> SelectionEngine:
    try:
        return SelectionEngine(con, scored, columns, normalization=mcfg.normalization,
                               hard_filters=mcfg.hard_filters, where=mcfg.where,
                               where_key="metarater.where")
    except SelectionError as exc:
        prefix = "" if str(exc).startswith("metarater.") else "metarater: "
        raise UserError(f"{prefix}{exc}") from None


def _cut(engine: SelectionEngine, mcfg: MetaraterConfig) -> Cut:
    budget = mcfg.token_budget or int(mcfg.fraction * sum(engine.domain_tokens().values()))
    return Cut(mode="token_budget", token_budget=budget, mixture_file=mcfg.mixture_file,
               length_neutral=mcfg.length_neutral, source_neutral=mcfg.source_neutral)


def _sources_of_id(scored: list[Path]) -> dict[str, str]:
    """id -> source, for the per-source diagnostics ({} when the input has no source)."""
    import pyarrow.parquet as pq

    out: dict[str, str] = {}
    for path in scored:
        if "source" not in pq.read_schema(path).names:
            return {}
        table = pq.read_table(path, columns=["id", "source"])
        out.update(zip(table.column(0).to_pylist(), table.column(1).to_pylist(), strict=True))
    return out


def _rows_of_id(train_cache: Path) -> dict[str, int]:
    from metamix.mixtures.proxies import load_token_cache

    return {doc_id: i for i, doc_id in enumerate(load_token_cache(str(train_cache)).ids)}


def _select(ctx: Context, run: PlannedRun) -> Selection:
    try:
        if run.random_order is not None:
            return ctx.engine.select(None, ctx.cut, random_seed=run.random_order)
        return ctx.engine.select(run.weights, ctx.cut)
    except SelectionError as exc:
        raise UserError(f"metarater: {exc}") from None


def check_equal_tokens(run: PlannedRun, selection: Selection, max_doc: Mapping[str, int],
                       tolerance: float) -> None:
    """Every run trains on its budgets: each domain within one document of its budget and
    its share within ``tolerance`` of the configured one."""
    budgets = selection.quotas["budget_tokens"]
    available = selection.quotas["available_tokens"]
    got = selection.tokens_per_domain()
    total = sum(budgets.values())
    for domain, budget in budgets.items():
        short = budget - got.get(domain, 0)
        share = got.get(domain, 0) / max(sum(got.values()), 1)
        if available[domain] < budget:
            raise UserError(f"metarater: domain '{domain}' has {available[domain]} tokens, "
                            f"below its budget {budget}; lower metarater.fraction/token_budget")
        if short > max_doc.get(domain, 0) or abs(share - budget / total) > tolerance:
            raise UserError(
                f"metarater: run {run.run_id} (weights {json.dumps(run.weights)}) holds "
                f"{got.get(domain, 0)} tokens of domain '{domain}' against a budget of "
                f"{budget}: runs must train on the same tokens per domain")


def selection_stats(selection: Selection, sources: Mapping[str, str]) -> dict[str, Any]:
    """Docs, tokens, median document length and tokens per source, per domain (the length
    and source diagnostics)."""
    lengths: dict[str, list[int]] = {}
    by_source: dict[str, dict[str, int]] = {}
    for doc_id, domain, n in zip(selection.kept.column("id").to_pylist(),
                                 selection.kept.column("domain").to_pylist(),
                                 selection.kept.column("n_tokens").to_pylist(), strict=True):
        lengths.setdefault(domain, []).append(int(n))
        if sources:
            per = by_source.setdefault(domain, {})
            src = str(sources.get(doc_id))
            per[src] = per.get(src, 0) + int(n)
    every = [n for v in lengths.values() for n in v]
    return {"docs": {d: len(v) for d, v in lengths.items()},
            "tokens": {d: int(sum(v)) for d, v in lengths.items()},
            "median_tokens": {d: float(np.median(v)) for d, v in lengths.items()},
            "median_all": float(np.median(every)) if every else 0.0,
            "source_tokens": by_source}


def proxy_task(ctx: Context, run_id: str, kind: str, weights: dict[str, float],
               selection: Selection, seed: int) -> ProxyTask:
    """A proxy run on exactly the documents of ``selection``, evaluated on the targets."""
    ids = selection.kept.column("id").to_pylist()
    rows = np.fromiter((ctx.rows_of_id[i] for i in ids), dtype=np.int64, count=len(ids))
    tokens = int(sum(selection.tokens_per_domain().values()))
    return ProxyTask(
        run_id=run_id, kind=kind, weights=weights,
        selection_sha256=hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest(),
        trainer=ctx.mcfg.proxy.trainer, trainer_params=ctx.mcfg.proxy.params,
        data=TrainingData(str(ctx.train_cache), rows, None, seed),
        validation=ValidationSet(str(ctx.eval_cache)), selection_docs=len(rows),
        selection_tokens=tokens, work_dir=str(ctx.out / "work"), sweep_key=ctx.key)


def _tasks(ctx: Context, planned: list[PlannedRun], max_doc: Mapping[str, int],
           stats: dict[str, dict[str, Any]]) -> list[ProxyTask]:
    tasks = []
    for run in planned:
        selection = _select(ctx, run)
        check_equal_tokens(run, selection, max_doc, ctx.mcfg.share_tolerance)
        ctx.budgets = selection.quotas["budget_tokens"]
        stats[run.run_id] = selection_stats(selection, ctx.sources)
        tasks.append(proxy_task(ctx, run.run_id, run.kind, run.weights, selection, run.seed))
    return tasks


def _max_doc_tokens(engine: SelectionEngine) -> dict[str, int]:
    rows = engine.con.sql("SELECT domain, max(n_tokens) FROM base WHERE drop_reason IS NULL "
                          "GROUP BY domain").fetchall()
    return {d: int(n) for d, n in rows}


def _weights_run(run_id: str, kind: str, names: list[str], directions: Mapping[str, Any],
                 features: np.ndarray, seed: int) -> PlannedRun:
    """A run of fitted weights; the id carries their digest, so new weights never reuse a
    stale row of the runs table."""
    weights = features_to_weights(names, directions, features)
    digest = hashlib.sha256(json.dumps(weights, sort_keys=True).encode()).hexdigest()[:8]
    return PlannedRun(f"{run_id}-{digest}", kind, weights, seed)


def _sweep_and_fit(ctx: Context, names: list[str], directions: dict[str, Any],
                   console: Console, started: float) -> dict[str, Any]:
    mcfg, cfg = ctx.mcfg, ctx.cfg
    planned = plan_runs(names, directions, mcfg, ctx.seed)
    table = RunsTable(ctx.out / "runs.parquet", ctx.key)
    workers = mcfg.workers or cfg.n_workers
    ray = cfg.ray if cfg.executor == "ray" else None
    max_doc = _max_doc_tokens(ctx.engine)
    stats: dict[str, dict[str, Any]] = {}
    families = families_of(mcfg.targets)
    console.print(f"metarater: {len(names)} scores, {len(planned)} proxy runs "
                  f"({mcfg.proxy.trainer}), {ctx.cut.token_budget:,} tokens per run, "
                  f"{len(mcfg.targets)} targets in {len(families)} families, {workers} workers")

    def sweep(runs: list[PlannedRun], label: str) -> dict[str, dict[str, Any]]:
        return run_sweep(_tasks(ctx, runs, max_doc, stats), table, workers=workers,
                         console=console, show_progress=cfg.progress, retries=mcfg.retries,
                         label=label, ray=ray)

    rows = sweep(planned, "proxies")
    values = {p.run_id: run_values(mcfg.targets, rows.get(p.run_id)) for p in planned}
    random_ids = [p.run_id for p in planned if p.kind == "random"]
    try:
        scale = FamilyScale.from_random(values, random_ids, mcfg.targets)
    except ValueError:
        raise UserError(f"metarater: fewer than two random selections succeeded; see "
                        f"{ctx.out / 'runs.parquet'} for their errors") from None
    fit_table = family_table(values, scale, "fit", families)
    fit_runs = [p for p in planned if p.kind in FIT_KINDS and p.run_id in fit_table]
    if len(fit_runs) < 2 * mcfg.folds:
        raise UserError(f"metarater: only {len(fit_runs)} proxy runs succeeded; see "
                        f"{ctx.out / 'runs.parquet'} for their errors")
    x = np.array([weights_to_features(names, directions, p.weights) for p in fit_runs])
    report_table = family_table(values, scale, "report", families)

    def fit_on(chosen: list[str], report: bool = False) -> Fitted:
        y = np.array([combine(fit_table[p.run_id], chosen, mcfg.objective) for p in fit_runs])
        y_report = (np.array([combine(report_table[p.run_id], chosen, mcfg.objective)
                              for p in fit_runs]) if report else None)
        return fit_weights(
            x, y, lambda rng, n: sample_features(rng, names, directions, mcfg.alpha, n),
            folds=mcfg.folds, seed=ctx.seed, n_search_samples=mcfg.n_search_samples,
            top_k=mcfg.top_k, lgbm_params=mcfg.regressor_params, y_report=y_report)

    equal = next((p for p in planned if p.kind == "equal"), None)
    plan = plan_held_out(
        list(families), fit_on, equal,
        weights_to_features(names, directions, equal.weights) if equal else None,
        mcfg.shrinkage, lambda run_id, kind, features: _weights_run(
            run_id, kind, names, directions, features, ctx.seed))
    rows.update(sweep(plan.runs(), "held-out"))
    every = [*planned, *plan.runs()]
    values = {p.run_id: run_values(mcfg.targets, rows.get(p.run_id)) for p in every}
    decision = decide(plan, family_table(values, scale, "report", families), fit_table,
                      [p.run_id for p in planned if p.kind == "single"],
                      lambda v, chosen: combine(v, chosen, mcfg.objective))
    final = plan.final
    if final.regressor == "lightgbm":
        with atomic_path(ctx.out / "regressor.txt") as tmp:
            final.model.booster_.save_model(str(tmp))
    shares = importance(final.model, names)
    summary = build_summary(
        planned=every, rows=rows, values=values, targets=mcfg.targets, scale=scale,
        families=families, decision=decision, regressor=final.regressor,
        cv={kind: {**score.as_dict(), "oof": {
            "run_id": [p.run_id for p in fit_runs], "fit": final.y.tolist(),
            "report": final.y_report.tolist(), "predicted": score.oof.tolist()}}
            for kind, score in final.cv.items()},
        predicted=final.predicted, importance=shares, budgets=ctx.budgets or {}, names=names,
        directions=directions, selection_stats=stats, config=mcfg.model_dump(mode="json"),
        seed=ctx.seed, n_boot=mcfg.bootstrap)
    shipped = summary["shipped"]
    save_weights_file(ctx.out / "weights.json", shipped["weights"],
                      normalization=mcfg.normalization,
                      extra={"method": shipped["method"], "run_id": shipped["run_id"],
                             "shrinkage": decision.amount,
                             "predicted_fit_objective": final.predicted,
                             "held_out_mean_gap_std": shipped["held_out_mean_gap_std"],
                             "importance": shares, "regressor": final.regressor,
                             "targets": [t.name for t in mcfg.targets],
                             "families": list(families), "hard_filters": mcfg.hard_filters,
                             "length_neutral": mcfg.length_neutral,
                             "source_neutral": mcfg.source_neutral,
                             "n_proxy_runs": len(fit_runs)})
    write_json_atomic(ctx.out / "summary.json", summary)
    write_json_atomic(cfg.run_dir / "logs" / "metarater.json",
                      {"seconds": time.monotonic() - started})
    print_summary(summary, console)
    return summary
