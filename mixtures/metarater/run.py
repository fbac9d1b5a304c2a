"""Meta-rater (Zhuang et al. 2025): learn quality-score weights from proxy-model runs.

1. Sample K weight vectors over the score columns (Dirichlet magnitudes; signs from each
   column's declared direction, random for neutral columns).
2. For each, select documents exactly as ``metamix select`` would (the same
   ``SelectionEngine``, mode ``token_budget``: every run holds the same tokens per domain)
   and train a proxy on them; evaluate it on the targets, each split into a fit and a report
   half.
3. Fit LightGBM and ridge from weights to the fit-half objective (K-fold CV); search many
   samples with the better one and average the top-k: the learned weights, written with
   ``save_weights_file`` so ``select.weights_file`` can use them.
4. Train a proxy on the learned selection and rank it, on the report half, against every run
   and baseline (independent random selections with the same tokens, each score alone,
   equal weights).
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
from metamix.mixtures.metarater.fit import (
    cross_validate,
    importance,
    make_regressor,
    search_weights,
)
from metamix.mixtures.metarater.plan import (
    PlannedRun,
    features_to_weights,
    plan_runs,
    resolve_directions,
    sample_features,
    weights_to_features,
)
from metamix.mixtures.metarater.summary import build_summary, print_summary, run_values
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
    # kept user fields are scores only when input.score_fields gives their direction
    passive = set(cfg.input.kept_columns()) - set(cfg.input.score_fields)
    columns = mcfg.scores or [c for c in numeric_columns(scored) if c not in passive]
    declared: dict[str, Any] = dict(cfg.input.score_fields)
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
                      mcfg.sweep_key(train_cache.name, eval_cache.name, seed), seed)
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
    return Cut(mode="token_budget", token_budget=budget, mixture_file=mcfg.mixture_file)


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


def selection_stats(selection: Selection) -> dict[str, Any]:
    """Docs, tokens and median document length per domain (the length diagnostics)."""
    lengths: dict[str, list[int]] = {}
    for domain, n in zip(selection.kept.column("domain").to_pylist(),
                         selection.kept.column("n_tokens").to_pylist(), strict=True):
        lengths.setdefault(domain, []).append(int(n))
    every = [n for v in lengths.values() for n in v]
    return {"docs": {d: len(v) for d, v in lengths.items()},
            "tokens": {d: int(sum(v)) for d, v in lengths.items()},
            "median_tokens": {d: float(np.median(v)) for d, v in lengths.items()},
            "median_all": float(np.median(every)) if every else 0.0}


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
        stats[run.run_id] = selection_stats(selection)
        tasks.append(proxy_task(ctx, run.run_id, run.kind, run.weights, selection, run.seed))
    return tasks


def _max_doc_tokens(engine: SelectionEngine) -> dict[str, int]:
    rows = engine.con.sql("SELECT domain, max(n_tokens) FROM base WHERE drop_reason IS NULL "
                          "GROUP BY domain").fetchall()
    return {d: int(n) for d, n in rows}


def _sweep_and_fit(ctx: Context, names: list[str], directions: dict[str, Any],
                   console: Console, started: float) -> dict[str, Any]:
    mcfg, cfg = ctx.mcfg, ctx.cfg
    planned = plan_runs(names, directions, mcfg, ctx.seed)
    table = RunsTable(ctx.out / "runs.parquet", ctx.key)
    workers = mcfg.workers or cfg.n_workers
    max_doc = _max_doc_tokens(ctx.engine)
    stats: dict[str, dict[str, Any]] = {}
    console.print(f"metarater: {len(names)} scores, {len(planned)} proxy runs "
                  f"({mcfg.proxy.trainer}), {ctx.cut.token_budget:,} tokens per run, "
                  f"{len(mcfg.targets)} targets, {workers} workers")
    rows = run_sweep(_tasks(ctx, planned, max_doc, stats), table, workers=workers,
                     console=console, show_progress=cfg.progress, retries=mcfg.retries,
                     ray=cfg.ray if cfg.executor == "ray" else None)

    fit_runs = [p for p in planned if p.kind in FIT_KINDS and rows[p.run_id]["status"] == "ok"]
    if len(fit_runs) < 2 * mcfg.folds:
        raise UserError(f"metarater: only {len(fit_runs)} proxy runs succeeded; see "
                        f"{ctx.out / 'runs.parquet'} for their errors")
    x = np.array([weights_to_features(names, directions, p.weights) for p in fit_runs])
    values = [run_values(mcfg.targets, rows[p.run_id]) for p in fit_runs]
    y_fit = np.array([v["fit"]["objective"] for v in values if v])
    y_report = np.array([v["report"]["objective"] for v in values if v])
    cv = {kind: cross_validate(x, y_fit, kind, folds=mcfg.folds, seed=ctx.seed,
                               params=mcfg.regressor_params if kind == "lightgbm" else None,
                               y_report=y_report)
          for kind in ("lightgbm", "ridge")}
    regressor = max(cv, key=lambda k: np.nan_to_num(cv[k].spearman, nan=-1.0))
    model = make_regressor(regressor, ctx.seed,
                           mcfg.regressor_params if regressor == "lightgbm" else None)
    model.fit(x, y_fit)
    if regressor == "lightgbm":
        with atomic_path(ctx.out / "regressor.txt") as tmp:
            model.booster_.save_model(str(tmp))
    found = search_weights(
        model, lambda rng, n: sample_features(rng, names, directions, mcfg.alpha, n),
        n_samples=mcfg.n_search_samples, top_k=mcfg.top_k, seed=ctx.seed + 1)
    learned = features_to_weights(names, directions, found.features)
    digest = hashlib.sha256(json.dumps(learned, sort_keys=True).encode()).hexdigest()[:8]
    learned_run = PlannedRun(f"learned-{digest}", "learned", learned, ctx.seed)
    rows.update(run_sweep(_tasks(ctx, [learned_run], max_doc, stats), table, workers=1,
                          console=console, show_progress=cfg.progress, retries=mcfg.retries,
                          label="learned", ray=cfg.ray if cfg.executor == "ray" else None))
    shares = importance(model, names)
    summary = build_summary(
        planned=[*planned, learned_run], rows=rows, targets=mcfg.targets,
        learned_id=learned_run.run_id, regressor=regressor,
        cv={kind: {**score.as_dict(), "oof": {
            "run_id": [p.run_id for p in fit_runs], "fit": y_fit.tolist(),
            "report": y_report.tolist(), "predicted": score.oof.tolist()}}
            for kind, score in cv.items()},
        predicted=found.predicted_loss,
        importance=shares, budgets=ctx.budgets or {}, names=names, directions=directions,
        selection_stats=stats, config=mcfg.model_dump(mode="json"))
    rep = summary["report"]
    save_weights_file(ctx.out / "weights.json", learned, normalization=mcfg.normalization,
                      extra={"predicted_fit_objective": found.predicted_loss,
                             "report_objective": rep["learned"], "gap_std": rep["gap_std"],
                             "importance": shares, "regressor": regressor,
                             "targets": [t.name for t in mcfg.targets],
                             "hard_filters": mcfg.hard_filters,
                             "n_proxy_runs": len(fit_runs)})
    write_json_atomic(ctx.out / "summary.json", summary)
    write_json_atomic(cfg.run_dir / "logs" / "metarater.json",
                      {"seconds": time.monotonic() - started})
    print_summary(summary, console)
    return summary
