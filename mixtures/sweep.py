"""Run many proxy trainings in parallel, recording each in a resumable runs table.

Tasks are plain picklable descriptions (``ProxyTask``) and results come back as plain rows,
so the pool could be swapped for a cluster queue. The parent is the only writer of
``runs.parquet``: after every finished attempt it rewrites the table atomically, so a killed
sweep loses at most the runs in flight, and a rerun skips every run id with an ``ok`` row.
Rows are kept sorted by (run id, attempt) and hold no timings, so the same sweep writes the
same bytes whatever order the workers finish in; each attempt's seconds and finish time go
to ``out/<run>/logs/<folder>_<table>.jsonl`` instead.

A failed run is never skipped silently: each attempt gets a row (status ``failed`` and its
one-line error) and the run is retried ``retries`` times within the sweep; a run that still
fails stays ``failed`` in the table and is tried again by the next sweep.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
import traceback
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console

from metamix.base.atomic import atomic_path, read_parquet_whole
from metamix.base.progress import counted_progress
from metamix.base.runlock import die_with_parent, exit_on_interrupt, join_run_lock
from metamix.mixtures.proxies import ProxyError, TrainingData, ValidationSet, make_trainer
from metamix.pipeline.config import RayConfig, ResourceRequest

SCHEMA = pa.schema([
    ("run_id", pa.string()), ("kind", pa.string()), ("attempt", pa.int64()),
    ("status", pa.string()), ("error", pa.string()), ("trainer", pa.string()),
    ("seed", pa.int64()), ("weights", pa.string()), ("selection_docs", pa.int64()),
    ("selection_tokens", pa.int64()), ("train_tokens", pa.int64()), ("losses", pa.string()),
    ("mean_loss", pa.float64()), ("sweep_key", pa.string()),
    ("curve", pa.string()), ("metrics", pa.string()),
    ("selection_sha256", pa.string()),
])


@dataclass(frozen=True)
class ProxyTask:
    """One proxy run, fully described by value (weights are informational: the selection is
    already resolved into ``data.doc_indices``)."""

    run_id: str
    kind: str
    weights: dict[str, float]
    trainer: str
    trainer_params: dict[str, Any]
    data: TrainingData
    validation: ValidationSet
    selection_docs: int
    selection_tokens: int
    work_dir: str
    sweep_key: str = ""
    attempt: int = 1
    #: sha256 of the selected ids, sorted and newline-joined: which documents, comparable
    #: with any other selection (e.g. ``metamix select``'s output)
    selection_sha256: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def execute_task(task: ProxyTask) -> dict[str, Any]:
    """Train one proxy and return its row; every failure becomes a ``failed`` row."""
    start = time.perf_counter()
    row: dict[str, Any] = {
        "run_id": task.run_id, "kind": task.kind, "attempt": task.attempt,
        "trainer": task.trainer, "seed": task.data.seed,
        "weights": json.dumps(task.weights, sort_keys=True),
        "selection_docs": task.selection_docs, "selection_tokens": task.selection_tokens,
        "sweep_key": task.sweep_key, "train_tokens": None, "losses": None, "mean_loss": None,
        "curve": None, "metrics": None, "selection_sha256": task.selection_sha256,
    }
    try:
        trainer = make_trainer(task.trainer, task.trainer_params)
        work_dir = Path(task.work_dir) / task.run_id
        result = trainer.fit_evaluate(task.data, task.validation, work_dir=work_dir)
        row.update(status="ok", error=None, train_tokens=result.n_train_tokens,
                   losses=json.dumps(result.losses, sort_keys=True), mean_loss=result.mean_loss,
                   curve=json.dumps(result.curve) if result.curve else None,
                   metrics=(json.dumps(result.info["metrics"], sort_keys=True)
                            if result.info.get("metrics") else None))
    except ProxyError as exc:
        row.update(status="failed", error=str(exc))
    except Exception as exc:  # a crash in a trainer must not take the sweep down
        last = traceback.format_exception_only(exc)[-1].strip()
        row.update(status="failed", error=f"{type(exc).__name__}: {last}"[:500])
    row["seconds"] = time.perf_counter() - start
    row["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return row


class RunsTable:
    """All attempts so far, persisted to one Parquet file rewritten atomically per append."""

    def __init__(self, path: Path, sweep_key: str = "", log_path: Path | None = None) -> None:
        self.path = Path(path)
        self.log_path = log_path or (self.path.parent.parent / "logs" /
                                     f"{self.path.parent.name}_{self.path.stem}.jsonl")
        self.rows: list[dict[str, Any]] = []
        if self.path.is_file():
            table = read_parquet_whole(self.path)
            keys = set(table.column("sweep_key").to_pylist()) if table.num_rows else set()
            if keys and keys != {sweep_key}:
                # Different data/proxy settings: keep the old table aside, start fresh.
                self.path.rename(self.path.with_name(f"runs-{sorted(keys)[0]}.parquet"))
            else:
                self.rows = [{k: r.get(k) for k in SCHEMA.names} for r in table.to_pylist()]

    def ok_rows(self) -> dict[str, dict[str, Any]]:
        return {r["run_id"]: r for r in self.rows if r["status"] == "ok"}

    def attempts(self, run_id: str) -> int:
        return sum(1 for r in self.rows if r["run_id"] == run_id)

    def append(self, row: dict[str, Any]) -> None:
        self.rows.append({k: row.get(k) for k in SCHEMA.names})
        self.rows.sort(key=lambda r: (r["run_id"], r["attempt"]))
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(json.dumps({"run_id": row["run_id"], "attempt": row["attempt"],
                                  "status": row["status"], "seconds": row.get("seconds"),
                                  "finished_at": row.get("finished_at")}) + "\n")
        table = pa.Table.from_pylist(self.rows, schema=SCHEMA)
        domains = sorted({d for r in self.rows if r["losses"] for d in json.loads(r["losses"])})
        for d in domains:   # convenience columns; ``losses`` (JSON) stays the source of truth
            values = [json.loads(r["losses"]).get(d) if r["losses"] else None for r in self.rows]
            table = table.append_column(f"loss_{d}", pa.array(values, pa.float64()))
        with atomic_path(self.path) as tmp:
            pq.write_table(table, tmp)


def run_sweep(tasks: Sequence[ProxyTask], table: RunsTable, *, workers: int, console: Console,
              show_progress: bool = True, retries: int = 1, label: str = "proxies",
              ray: RayConfig | None = None) -> dict[str, dict[str, Any]]:
    """Run every task without an ``ok`` row; return the final row of every task by run id.

    With ``ray`` (``executor: ray``) each run is a Ray task asking for its trainer's
    ``ray.proxy_resources`` (e.g. a GPU for gpt), as many at once as the cluster fits; rows
    still come back here and only this process writes the table."""
    done = table.ok_rows()
    todo = [replace(t, attempt=table.attempts(t.run_id) + 1) for t in tasks
            if t.run_id not in done]
    final: dict[str, dict[str, Any]] = {t.run_id: done[t.run_id] for t in tasks
                                        if t.run_id in done}
    tries: dict[str, int] = {}
    with counted_progress(console, show_progress,
                          "runs  {task.fields[failed]} failed") as progress:
        bar = progress.add_task(label, total=len(todo), failed=0)

        def finish(task: ProxyTask, row: dict[str, Any]) -> ProxyTask | None:
            table.append(row)
            tries[task.run_id] = tries.get(task.run_id, 0) + 1
            if row["status"] != "ok" and tries[task.run_id] <= retries:
                return replace(task, attempt=task.attempt + 1)
            final[task.run_id] = row
            failed = sum(1 for r in final.values() if r["status"] != "ok")
            progress.update(bar, advance=1, failed=failed)
            return None

        if ray is not None and todo:
            _run_ray(todo, ray, finish)
        elif workers <= 1 or len(todo) <= 1:
            queue = list(todo)
            while queue:
                task = queue.pop(0)
                again = finish(task, execute_task(task))
                if again is not None:
                    queue.insert(0, again)
        else:
            _run_pool(todo, workers, finish)
    return {t.run_id: final[t.run_id] for t in tasks if t.run_id in final}


def _init_worker() -> None:
    """Die with the command, leave Ctrl-C's message to it and hold a share of its run
    lock (``metamix.base.runlock``)."""
    die_with_parent()
    exit_on_interrupt()
    join_run_lock()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def _run_pool(todo: list[ProxyTask], workers: int, finish: Any) -> None:
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=ctx,
                             initializer=_init_worker) as pool:
        pending: dict[Future[dict[str, Any]], ProxyTask] = {
            pool.submit(execute_task, t): t for t in todo}
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                task = pending.pop(fut)
                again = finish(task, fut.result())
                if again is not None:
                    pending[pool.submit(execute_task, again)] = again


def _run_ray(todo: list[ProxyTask], cfg: RayConfig, finish: Any) -> None:
    from metamix.pipeline.ray_executor import check_fits, connect, task_options

    ray = connect(cfg)
    remote = ray.remote(_execute_in_ray)
    default = ResourceRequest(num_cpus=1)
    for trainer in sorted({t.trainer for t in todo}):
        check_fits(ray, cfg.proxy_resources.get(trainer, default),
                   f"ray.proxy_resources.{trainer}")

    def submit(task: ProxyTask) -> Any:
        req = cfg.proxy_resources.get(task.trainer, default)
        # a run that fails is retried by ``finish`` (and recorded); Ray retries only runs
        # whose worker or node died
        return remote.options(**task_options(req, cfg.max_retries)).remote(task)

    pending = {submit(t): t for t in todo}
    while pending:
        finished, _ = ray.wait(list(pending), num_returns=1)
        for ref in finished:
            task = pending.pop(ref)
            try:
                row = ray.get(ref)
            except ray.exceptions.RayError as exc:  # the worker or node died for good
                row = {**_failed_row(task), "error": f"ray: {type(exc).__name__}: "
                       f"{str(exc).splitlines()[0][:400]}"}
            again = finish(task, row)
            if again is not None:
                pending[submit(again)] = again


def _execute_in_ray(task: ProxyTask) -> dict[str, Any]:
    _init_worker()
    return execute_task(task)


def _failed_row(task: ProxyTask) -> dict[str, Any]:
    return {"run_id": task.run_id, "kind": task.kind, "attempt": task.attempt,
            "status": "failed", "trainer": task.trainer, "seed": task.data.seed,
            "weights": json.dumps(task.weights, sort_keys=True),
            "selection_docs": task.selection_docs, "selection_tokens": task.selection_tokens,
            "sweep_key": task.sweep_key, "selection_sha256": task.selection_sha256}
