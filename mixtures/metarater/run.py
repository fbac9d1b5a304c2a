"""Meta-rater (Zhuang et al. 2025): learn quality-score weights from proxy-model runs.

1. Sample K weight vectors from a symmetric Dirichlet over the score columns.
2. For each, select the top fraction by the normalized weighted score (same semantics as
   ``metamix select``; see ``metarater_select``) and train a proxy on it.
3. Fit LightGBM weights -> validation loss (ridge as the linear baseline, K-fold CV).
4. Predict the loss of many Dirichlet samples, average the top-k best: the learned weights,
   written with ``save_weights_file`` so ``select.weights_file`` can use them.
5. Train a proxy on the learned selection too and rank it against every run and baseline
   (random selection, each score alone, equal weights); repeat a few configs with other
   seeds to measure how much of the loss spread is noise.

All runs share one token budget (default ``auto``: the 10% quantile of the Dirichlet
selections' sizes), so a selection cannot win by merely containing more tokens; the seed
shuffles which selected documents fill it. A selection smaller than the budget trains on all
it has (fewer tokens: the cost of picking short documents); the summary lists those runs.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from metamix.base.atomic import atomic_path, write_json_atomic
from metamix.base.errors import UserError
from metamix.mixtures.metarater.config import MetaraterConfig, ProxyConfig
from metamix.mixtures.metarater.fit import (
    cross_validate,
    gain_importance,
    make_regressor,
    search_weights,
)
from metamix.mixtures.metarater.scores import (
    ScoreMatrix,
    load_score_matrix,
    numeric_columns,
    random_selection,
    select_top_fraction,
)
from metamix.mixtures.metarater.summary import build_summary, print_summary
from metamix.mixtures.proxies import (
    TrainingData,
    ValidationSet,
    build_token_cache,
    load_token_cache,
)
from metamix.mixtures.sweep import ProxyTask, RunsTable, run_sweep
from metamix.pipeline.config import PipelineConfig
from metamix.pipeline.runner import proxy_inputs
from metamix.pipeline.selection.files import save_weights_file

__all__ = ["MetaraterConfig", "ProxyConfig", "run_metarater"]

FIT_KINDS = ("dirichlet",)   # the regressor sees exactly the K sampled vectors


@dataclass(frozen=True)
class PlannedRun:
    run_id: str
    kind: str
    weights: dict[str, float]      # signed, as written to a weights file ({} = random)
    rows: np.ndarray
    seed: int


def default_scores(matrix_paths: list[Path]) -> list[str]:
    return numeric_columns(matrix_paths)


def _varying(matrix: ScoreMatrix) -> list[str]:
    """Columns whose normalized values are not all equal/missing (others cannot rank)."""
    return [n for j, n in enumerate(matrix.names)
            if np.nanmax(np.nan_to_num(matrix.normalized[:, j], nan=-1.0)) > 0]


def _signed(names: list[str], w: np.ndarray, lower: set[str]) -> dict[str, float]:
    return {n: float(-x if n in lower else x) for n, x in zip(names, w, strict=True)}


def plan_runs(matrix: ScoreMatrix, mcfg: MetaraterConfig, names: list[str], seed: int
              ) -> list[PlannedRun]:
    """Dirichlet runs and baselines (repeats follow the budget; learned follows the fit)."""
    lower = set(mcfg.lower_is_better)
    rng = np.random.default_rng(seed)

    def run(run_id: str, kind: str, weights: dict[str, float], s: int = seed) -> PlannedRun:
        rows = select_top_fraction(matrix, weights, mcfg.fraction, per_domain=mcfg.per_domain)
        return PlannedRun(run_id, kind, weights, rows, s)

    runs = [run(f"dirichlet-{i:03d}", "dirichlet",
                _signed(names, rng.dirichlet(np.full(len(names), mcfg.alpha)), lower))
            for i in range(mcfg.k)]
    equal = run("equal", "equal", _signed(names, np.full(len(names), 1 / len(names)), lower))
    if mcfg.baselines:
        runs.append(equal)
        runs += [run(f"single-{n}", "single", {n: -1.0 if n in lower else 1.0}) for n in names]
        runs.append(PlannedRun("random", "random", {}, random_selection(
            matrix, mcfg.fraction, seed, per_domain=mcfg.per_domain), seed))
    return runs


def add_seed_repeats(runs: list[PlannedRun], mcfg: MetaraterConfig, seed: int,
                     budget: int | None, lengths: np.ndarray) -> list[PlannedRun]:
    """Repeat equal weights and the first Dirichlet runs under other seeds.

    Configs whose selection exceeds the token budget come first: for a deterministic proxy
    (ngram) the seed only picks which selected documents fill the budget, so a selection
    below it would repeat identically and understate the noise."""
    bases = [p for p in runs if p.kind == "equal"] + [p for p in runs if p.kind == "dirichlet"]
    if budget is not None:
        bases.sort(key=lambda p: int(lengths[p.rows].sum()) <= budget)   # stable
    repeats = [PlannedRun(f"{base.run_id}@seed{offset}", f"{base.kind}-repeat", base.weights,
                          base.rows, seed + offset)
               for base in bases[: mcfg.seed_repeat_configs]
               for offset in range(1, mcfg.seed_repeats)]
    return runs + repeats


def run_metarater(cfg: PipelineConfig, mcfg: MetaraterConfig, console: Console) -> dict[str, Any]:
    """Run the whole loop; write ``<run_dir>/metarater/`` and return the summary."""
    started = time.monotonic()
    seed = cfg.seed if mcfg.seed is None else mcfg.seed
    out = cfg.run_dir / "metarater"
    scored, valid, tokenizer = proxy_inputs(cfg, "metarater")
    names = sorted(mcfg.scores or default_scores(scored))
    matrix = load_score_matrix(scored, names, normalization=mcfg.normalization,
                               hard_filters=mcfg.hard_filters)
    if mcfg.scores is None:
        names = _varying(matrix)
        if len(names) < 2:
            raise UserError("metarater: fewer than two score columns vary; nothing to weight")
        matrix = load_score_matrix(scored, names, normalization=mcfg.normalization,
                                   hard_filters=mcfg.hard_filters)
    with console.status("tokenizing the corpus for the proxies (cached)"):
        cache_root = cfg.resolve(cfg.out_dir) / "_cache" / "tokens"
        train_cache = build_token_cache(scored, tokenizer, cache_root)
        valid_cache = build_token_cache(valid, tokenizer, cache_root)
    corpus = load_token_cache(str(train_cache))
    if not np.array_equal(corpus.ids, matrix.ids):
        raise UserError("token cache rows do not match the scored shards; delete out/_cache")
    validation = ValidationSet(str(valid_cache))
    domains = validation.load().domain_names
    if mcfg.target != "mean" and mcfg.target not in domains:
        raise UserError(f"metarater.target: '{mcfg.target}' is not 'mean' or one of {domains}")

    planned = plan_runs(matrix, mcfg, names, seed)
    lengths = corpus.doc_lengths()
    budget = mcfg.token_budget
    if budget == "auto":
        sizes = [int(lengths[p.rows].sum()) for p in planned if p.kind == "dirichlet"]
        budget = int(np.quantile(sizes, mcfg.auto_budget_quantile, method="lower"))
    planned = add_seed_repeats(planned, mcfg, seed, budget, lengths)
    key = mcfg.sweep_key(train_cache.name, valid_cache.name, seed, budget)
    table = RunsTable(out / "runs.parquet", key)
    workers = mcfg.workers or cfg.n_workers

    def task(p: PlannedRun) -> ProxyTask:
        return ProxyTask(
            run_id=p.run_id, kind=p.kind, weights=p.weights, trainer=mcfg.proxy.trainer,
            trainer_params=mcfg.proxy.params,
            data=TrainingData(str(train_cache), p.rows, budget, p.seed), validation=validation,
            selection_docs=len(p.rows), selection_tokens=int(lengths[p.rows].sum()),
            work_dir=str(out / "work"), sweep_key=key)

    console.print(f"metarater: {len(names)} scores, {len(planned)} proxy runs "
                  f"({mcfg.proxy.trainer}), budget {budget} tokens/run, {workers} workers")
    rows = run_sweep([task(p) for p in planned], table, workers=workers, console=console,
                     show_progress=cfg.progress, retries=mcfg.retries)

    fit_runs = [p for p in planned if p.kind in FIT_KINDS and rows[p.run_id]["status"] == "ok"]
    if len(fit_runs) < 2 * mcfg.folds:
        raise UserError(f"metarater: only {len(fit_runs)} proxy runs succeeded; see "
                        f"{out / 'runs.parquet'} for their errors")
    x = np.array([[abs(p.weights.get(n, 0.0)) for n in names] for p in fit_runs])
    x /= x.sum(axis=1, keepdims=True)
    y = np.array([target_loss(rows[p.run_id], mcfg.target) for p in fit_runs])
    cv = {kind: cross_validate(x, y, kind, folds=mcfg.folds, seed=seed,
                               params=mcfg.regressor_params if kind == "lightgbm" else None)
          for kind in ("lightgbm", "ridge")}
    model = make_regressor("lightgbm", seed, mcfg.regressor_params).fit(x, y)
    with atomic_path(out / "regressor.txt") as tmp:
        model.booster_.save_model(str(tmp))
    found = search_weights(model, len(names), n_samples=mcfg.n_search_samples,
                           top_k=mcfg.top_k, alpha=mcfg.alpha, seed=seed + 1)
    learned = _signed(names, found.weights, set(mcfg.lower_is_better))
    digest = hashlib.sha256(json.dumps(learned, sort_keys=True).encode()).hexdigest()[:8]
    learned_run = PlannedRun(f"learned-{digest}", "learned", learned,
                             select_top_fraction(matrix, learned, mcfg.fraction,
                                                 per_domain=mcfg.per_domain), seed)
    rows.update(run_sweep([task(learned_run)], table, workers=1, console=console,
                          show_progress=cfg.progress, retries=mcfg.retries, label="learned"))
    importance = gain_importance(model, names)
    summary = build_summary(
        planned=[*planned, learned_run], rows=rows, target=mcfg.target, cv=cv,
        learned_id=learned_run.run_id, predicted_loss=found.predicted_loss,
        importance=importance, budget=budget, names=names,
        seconds=time.monotonic() - started, config=mcfg.model_dump(mode="json"))
    save_weights_file(out / "weights.json", learned, normalization=mcfg.normalization, extra={
        "predicted_loss": found.predicted_loss, "actual_loss": summary["learned"]["loss"],
        "importance": importance, "target": mcfg.target, "fraction": mcfg.fraction,
        "hard_filters": mcfg.hard_filters, "per_domain": mcfg.per_domain,
        "n_proxy_runs": len(fit_runs)})
    write_json_atomic(out / "summary.json", summary)
    print_summary(summary, console)
    return summary


def target_loss(row: dict[str, Any], target: str) -> float:
    if target == "mean":
        return float(row["mean_loss"])
    return float(json.loads(row["losses"])[target])
