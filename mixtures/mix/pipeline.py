"""``run_mix``: choose the domain mixture of the scored corpus from proxy runs (``make mix``).

1. Token caches of the scored train shards and validation shards (cached by input hashes),
   restricted to the documents ``select`` may ship (``metamix.pipeline.selection.eligible``:
   select.where, dedup, select.hard_filters): experts, availability and runs see only them.
2. Data experts: one proxy per domain, per-token validation probabilities cached once.
3. RegMix-sampled mixtures around the token prior (caps: weight x target_tokens <=
   max_epochs x available), one proxy run each with exact per-domain budgets; every attempt
   is logged in ``mix/attempts.parquet`` (``metamix.mixtures.sweep``: a rerun skips finished runs)
   and the successful ones form ``mix/runs.parquet`` (runs-table format, with ``mde_*``).
4. BoTorch BO rounds (q proposals each, run for real), then every surrogate with and without
   MDE features is K-fold scored on all runs; the best is refitted.
5. RegMix top-k search with that surrogate; the final mixture is the lowest predicted among
   the RegMix result, BO proposals and evaluated runs; one proxy run measures it.
6. ``<run_dir>/mixture/``: weights.json/.yaml, megatron_data_path.txt, interleave_datasets.py
   (deterministic for one config) with the shares ``select`` will ship (the chosen mixture
   after the shortfall rule of ``metamix.pipeline.selection.shares``) and the chosen ones
   beside them; timings and host facts in ``<run_dir>/logs/mix.json``.

Torch threads: GP fitting and search run in this process while no proxy worker runs, with
``min(workers, cores)`` threads, so workers x threads never exceeds the cores.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console

from metamix.base.atomic import atomic_path
from metamix.base.errors import UserError
from metamix.base.hashing import json_hash
from metamix.base.storage import require_local
from metamix.mixtures.mix.config import MixConfig
from metamix.mixtures.mix.data import DomainIndex, build_caches, eligible_index, mixture_data
from metamix.mixtures.mix.experts import build_experts
from metamix.mixtures.mix.fitting import (
    MdeFeaturizer,
    compare_surrogates,
    objective_weights,
)
from metamix.mixtures.mix.mde import mde_features
from metamix.mixtures.mix.proposals import Candidate, bo_batch, choose_final, regmix_candidate
from metamix.mixtures.mix.report import emit_mixture, print_summary, write_mix_log
from metamix.mixtures.mix.runs_table import MDE_PREFIX, WEIGHT_PREFIX
from metamix.mixtures.mix.sampling import availability_caps, sample_mixtures
from metamix.mixtures.proxies import ValidationSet, load_token_cache
from metamix.mixtures.sweep import ProxyTask, RunsTable, run_sweep
from metamix.pipeline.config import PipelineConfig

__all__ = ["MixConfig", "run_mix"]

FIT_KINDS = ("sample", "bo")


def mixture_id(kind: str, weights: np.ndarray) -> str:
    """Run id from the kind and the weights themselves, so resuming matches by content."""
    digest = hashlib.sha256(np.round(weights, 9).tobytes()).hexdigest()[:10]
    return f"{kind}-{digest}"


class MixRunner:
    """Proxy runs of mixtures through ``metamix.mixtures.sweep`` (pool, retries, resumable log)."""

    def __init__(self, cfg: PipelineConfig, mcfg: MixConfig, index: DomainIndex, train_cache: str,
                 validation: ValidationSet, key: str, seed: int, console: Console) -> None:
        self.cfg, self.mcfg, self.index, self.console = cfg, mcfg, index, console
        self.train_cache, self.validation, self.key, self.seed = train_cache, validation, key, seed
        self.out = cfg.run_dir / "mix"
        path = self.out / "attempts.parquet"
        try:
            self.log = RunsTable(path, key)
        except (pa.ArrowException, OSError, KeyError) as exc:
            raise UserError(f"{path}: cannot read the proxy-run log ({type(exc).__name__}: "
                            f"{str(exc)[:200]}); delete it to start the runs over") from None
        self.runs: dict[str, tuple[str, np.ndarray, dict[str, Any]]] = {}

    def run(self, kind: str, mixtures: np.ndarray) -> list[str]:
        """Run (or reuse) each mixture; returns the run ids that succeeded."""
        tasks = []
        for w in np.atleast_2d(mixtures):
            data = mixture_data(self.train_cache, self.index, w, self.mcfg.proxy_tokens,
                                self.seed)
            tasks.append(ProxyTask(
                run_id=mixture_id(kind, w), kind=kind,
                weights={d: float(x) for d, x in zip(self.index.domains, w, strict=True)},
                trainer=self.mcfg.proxy.trainer, trainer_params=self.mcfg.proxy.params,
                data=data, validation=self.validation, selection_docs=len(data.doc_indices),
                selection_tokens=int(np.sum(data.row_tokens)), work_dir=str(self.out / "work"),
                sweep_key=self.key))
        rows = run_sweep(tasks, self.log, workers=self.mcfg.workers or self.cfg.n_workers,
                         console=self.console, show_progress=self.cfg.progress,
                         retries=self.mcfg.retries, label=f"{kind} runs",
                         ray=self.cfg.ray if self.cfg.executor == "ray" else None)
        ok = []
        for task, w in zip(tasks, np.atleast_2d(mixtures), strict=True):
            row = rows.get(task.run_id)
            if row is not None and row["status"] == "ok":
                self.runs[task.run_id] = (kind, w, row)
                ok.append(task.run_id)
        return ok

    def matrix(self, val_domains: list[str], kinds: tuple[str, ...] = FIT_KINDS
               ) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(run ids, weights N x E, per-validation-domain losses N x V) of successful runs."""
        ids = [r for r, (k, _, _) in self.runs.items() if k in kinds]
        w = np.array([self.runs[r][1] for r in ids]).reshape(len(ids), len(self.index.domains))
        losses = np.array([[_losses(self.runs[r][2])[v] for v in val_domains] for r in ids])
        return ids, w, losses.reshape(len(ids), len(val_domains))


def _losses(row: dict[str, Any]) -> dict[str, float]:
    return json.loads(row["losses"])


def write_mix_runs(path: Path, runner: MixRunner, val_domains: list[str],
                   experts_mde: Any) -> Path:
    """``runs.parquet`` in the runs-table format: run_id, kind, w_*, loss_*, mde_*."""
    ids, weights, losses = runner.matrix(val_domains, kinds=("sample", "bo", "final"))
    mde = experts_mde(weights) if len(ids) else np.zeros((0, len(val_domains)))
    cols: dict[str, pa.Array] = {
        "run_id": pa.array(ids, pa.string()),
        "kind": pa.array([runner.runs[r][0] for r in ids], pa.string())}
    for j, d in enumerate(runner.index.domains):
        cols[f"{WEIGHT_PREFIX}{d}"] = pa.array(weights[:, j], pa.float64())
    for j, v in enumerate(val_domains):
        cols[f"loss_{v}"] = pa.array(losses[:, j], pa.float64())
    for j, v in enumerate(val_domains):
        cols[f"{MDE_PREFIX}{v}"] = pa.array(mde[:, j].astype(np.float64), pa.float64())
    with atomic_path(path) as tmp:
        pq.write_table(pa.table(cols), tmp)
    return path


@contextmanager
def torch_threads(n: int) -> Iterator[int]:
    """Run the block with ``n`` torch threads (restored afterwards)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, n))
    try:
        yield max(1, n)
    finally:
        torch.set_num_threads(before)


def run_mix(cfg: PipelineConfig, mcfg: MixConfig, console: Console) -> dict[str, Any]:
    """The whole loop; writes ``<run_dir>/mix/`` and ``<run_dir>/mixture/``, returns the summary."""
    require_local(cfg.run_dir, "mix")
    workers = mcfg.workers or cfg.n_workers
    with torch_threads(min(workers, os.cpu_count() or 1)) as threads:
        return _run_mix(cfg, mcfg, console, workers, threads)


def _run_mix(cfg: PipelineConfig, mcfg: MixConfig, console: Console, workers: int,
             threads: int) -> dict[str, Any]:
    started = time.monotonic()
    seed = cfg.seed if mcfg.seed is None else mcfg.seed
    with console.status("tokenizing the corpus for the proxies (cached)"):
        train_cache, valid_cache = build_caches(cfg)
    eligible = eligible_index(cfg, load_token_cache(str(train_cache)))
    index = eligible.index
    validation = ValidationSet(str(valid_cache))
    val_domains = list(validation.load().domain_names)
    available = eligible.available
    prior = available / available.sum()
    target = int(mcfg.target_tokens or mcfg.target_fraction * available.sum())
    caps = availability_caps(available, target, mcfg.max_epochs)
    if caps.sum() < 1.0:
        raise UserError(f"mix: target_tokens {target} exceeds max_epochs x available tokens "
                        f"({mcfg.max_epochs:g} x {int(available.sum())}); lower the target "
                        "or raise max_epochs")
    key = mcfg.sweep_key(train_cache.name, valid_cache.name, seed)
    if eligible.digest is not None:   # runs on other documents are not these runs
        key = json_hash([key, eligible.digest])
    console.print(f"mix: {len(index.domains)} domains, {int(available.sum()):,} eligible "
                  f"tokens of {sum(eligible.all_tokens.values()):,}, "
                  f"target {target:,}, {mcfg.n_runs} sampled runs x {mcfg.proxy_tokens:,} "
                  f"tokens ({mcfg.proxy.trainer})")
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    experts = build_experts(cfg.run_dir / "mix" / "experts", str(train_cache), validation,
                            index, mcfg.proxy.trainer, mcfg.proxy.params,
                            mcfg.expert_tokens or mcfg.proxy_tokens, seed, key, console,
                            cfg.progress, ray=cfg.ray if cfg.executor == "ray" else None)
    timings["experts"] = time.monotonic() - t0

    def exact_mde(w: np.ndarray) -> np.ndarray:
        return mde_features(experts.probs, experts.token_domains, w,
                            n_domains=len(val_domains))

    t0 = time.monotonic()
    runner = MixRunner(cfg, mcfg, index, str(train_cache), validation, key, seed, console)
    try:
        sampled = sample_mixtures(prior, mcfg.n_runs, seed=seed, caps=caps)
    except ValueError as exc:
        raise UserError(f"mix: cannot sample {mcfg.n_runs} mixtures: {exc}") from None
    runner.run("sample", sampled)
    tw = objective_weights(mcfg.objective, val_domains, experts.token_domains)
    proposed: list[Candidate] = []
    for r in range(max(mcfg.bo_rounds, 1)):
        _, w, losses = runner.matrix(val_domains)
        if len(w) < 3:
            raise UserError(f"mix: only {len(w)} proxy runs succeeded; see "
                            f"{runner.log.path} for their errors")
        batch = bo_batch(w, losses @ tw, mcfg.bo_batch, caps, seed + 1 + r)
        if mcfg.bo_rounds:
            runner.run("bo", batch)
        else:
            proposed += [Candidate(f"bo-{i}", b, np.nan) for i, b in enumerate(batch)]
    timings["runs"] = time.monotonic() - t0
    runs_path = write_mix_runs(cfg.run_dir / "mix" / "runs.parquet", runner, val_domains,
                               exact_mde)

    t0 = time.monotonic()
    mde = MdeFeaturizer(experts, mcfg.mde_tokens_per_domain, seed)
    ids, w, losses = runner.matrix(val_domains)
    with console.status("K-fold evaluating surrogates"):
        kfold, best, surrogate = compare_surrogates(list(mcfg.surrogates), w, losses, tw,
                                                    mde, mcfg.folds, seed)
    timings["surrogates"] = time.monotonic() - t0
    regmix, timings["regmix_search"] = regmix_candidate(surrogate, prior, caps,
                                                        mcfg.n_candidates, mcfg.top_k, seed)
    evaluated = [Candidate(f"run:{r}", w[i], np.nan, float(losses[i] @ tw))
                 for i, r in enumerate(ids)]
    final = choose_final(surrogate, [regmix, *proposed, *evaluated])
    predicted_each = surrogate.predict_each(final.weights)[0]
    actual: dict[str, float] | None = None
    if mcfg.evaluate_final:
        t0 = time.monotonic()
        done = runner.run("final", final.weights[None, :])
        if done:
            actual = {v: _losses(runner.runs[done[0]][2])[v] for v in val_domains}
        timings["final_run"] = time.monotonic() - t0
        write_mix_runs(runs_path, runner, val_domains, exact_mde)
    summary = emit_mixture(
        cfg.run_dir / "mixture", mcfg=mcfg, eligible=eligible, final=final, prior=prior,
        caps=caps, target=target, val_domains=val_domains,
        objective_weights=tw, predicted_each=predicted_each, actual=actual,
        surrogate=best.label, kfold=kfold, runs_used=ids, runs_path=runs_path,
        sweep_key=key, cfg=cfg)
    timings["total"] = time.monotonic() - started
    write_mix_log(cfg.run_dir, timings, kfold, threads, workers,
                  {"run_dir": cfg.run_dir, "runs_table": runs_path,
                   "train_cache": train_cache, "valid_cache": valid_cache})
    print_summary(summary, console, timings["total"])
    return summary
