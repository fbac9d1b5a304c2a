"""Ray executor: the same shard tasks as the local pool, one Ray task per shard.

Why tasks per shard rather than Ray Data ``map_batches``: a shard is already the unit of
work, of output file, of manifest record and of resume. A task runs ``ingest_shard`` /
``transform_shard`` unchanged: it streams its input, writes its output atomically and its
record last, wherever on the cluster it runs. Ray Data would re-cut the rows into its own
blocks, and the per-shard outputs, records and byte-identical row groups would have to be
rebuilt around it. What Ray adds here is placement, retries of tasks whose worker or node
died (``max_retries``), and a cluster's cores instead of one machine's.

The driver only submits, gathers records and draws progress (per finished shard: workers
on other machines have no queue back to it). Results come back in task order.
"""

from __future__ import annotations

import fnmatch
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from rich.console import Console

from metamix.base.errors import UserError
from metamix.base.progress import make_progress
from metamix.pipeline import executor as local_executor
from metamix.pipeline.config import RayConfig, ResourceRequest

T = TypeVar("T")
R = TypeVar("R")


def connect(cfg: RayConfig) -> Any:
    """``ray`` initialised against ``cfg.address`` (once per process), or one clear error."""
    try:
        import ray
    except ImportError:
        raise UserError("executor: ray needs the ray package: pip install 'metamix[ray]'"
                        ) from None
    if ray.is_initialized():
        return ray
    address = None if cfg.address == "local" else cfg.address
    env = forwarded_env(cfg.env_vars)
    try:
        # an empty runtime_env lets the job use the workers each node started in advance
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 logging_level="WARNING", configure_logging=True,
                 runtime_env={"env_vars": env} if env else None)
    except ConnectionError as exc:
        raise UserError(f"ray.address = {cfg.address!r}: no Ray cluster there ({exc}); start "
                        "one with `ray start --head`, or set ray.address: local") from None
    return ray


def forwarded_env(patterns: Sequence[str]) -> dict[str, str]:
    """The driver's variables matching ``patterns``: credentials for workers elsewhere."""
    return {k: v for k, v in sorted(os.environ.items())
            if any(fnmatch.fnmatchcase(k, p) for p in patterns)}


def task_options(req: ResourceRequest, max_retries: int) -> dict[str, Any]:
    opts: dict[str, Any] = {"num_cpus": req.num_cpus, "max_retries": max_retries}
    if req.num_gpus:
        opts["num_gpus"] = req.num_gpus
    if req.memory_mb:
        opts["memory"] = req.memory_mb * 2**20
    return opts


def check_fits(ray: Any, req: ResourceRequest, key: str) -> None:
    """A request no node can meet would wait forever: say so instead (e.g. a GPU asked of
    a CPU-only cluster)."""
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    wanted = {"CPU": req.num_cpus, "GPU": req.num_gpus}
    if not any(all(res.get(k, 0) >= v for k, v in wanted.items() if v) for res in nodes):
        have = ", ".join(f"{res.get('CPU', 0):g} CPU / {res.get('GPU', 0):g} GPU"
                         for res in nodes)
        raise UserError(f"{key} asks for {req.num_cpus:g} CPU / {req.num_gpus:g} GPU per "
                        f"task; no node of the Ray cluster has that ({have})")


def _in_ray_worker(fn: Callable[[Any], Any], task: Any, threads: int) -> tuple[Any, str]:
    """Run one task in a Ray worker; a worker keeps its warmed-up stages for the next shard
    like a pool worker does. Returns the result and the node it ran on."""
    import ray

    if local_executor._worker_cache is None:
        local_executor._init_worker(None, threads)
    return fn(task), ray.get_runtime_context().get_node_id()


class RayPool:
    """Stands in for ``WorkerPool`` when ``executor: ray``: ``map`` runs shard tasks."""

    def __init__(self, cfg: RayConfig) -> None:
        self.cfg = cfg
        self.ray = connect(cfg)
        self._remote = self.ray.remote(_in_ray_worker)
        #: shard label -> node id, per stage: where each task ran (for logs and tests)
        self.placement: dict[str, dict[str, str]] = {}

    def __enter__(self) -> RayPool:
        return self

    def __exit__(self, *exc: object) -> None:
        pass  # the cluster outlives the command; its workers are released with the job

    @property
    def cluster_cpus(self) -> int:
        return int(self.ray.cluster_resources().get("CPU", 0))

    def map(self, fn: Callable[[T], R], tasks: Sequence[T], *, label: str,
            total_docs: int | None, console: Console, show_progress: bool,
            docs_of: Callable[[R], int] = lambda r: 0) -> list[R]:
        """Run ``fn`` over ``tasks`` on the cluster; results in task order."""
        req = ResourceRequest(num_cpus=self.cfg.num_cpus_per_task,
                              memory_mb=self.cfg.memory_mb_per_task)
        check_fits(self.ray, req, "ray.num_cpus_per_task")
        opts = task_options(req, self.cfg.max_retries)
        threads = max(1, int(self.cfg.num_cpus_per_task))
        refs = [self._remote.options(**opts).remote(fn, t, threads) for t in tasks]
        index = {ref: i for i, ref in enumerate(refs)}
        results: list[Any] = [None] * len(tasks)
        nodes = self.placement.setdefault(label, {})
        start = time.monotonic()
        with make_progress(console, show_progress) as progress:
            bar = progress.add_task(label, total=total_docs, mb=0.0, rate=0.0)
            done = 0
            pending = list(refs)
            try:
                while pending:
                    finished, pending = self.ray.wait(pending, num_returns=1, timeout=0.5)
                    for ref in finished:
                        result, node = self.ray.get(ref)
                        i = index[ref]
                        results[i] = result
                        nodes[getattr(tasks[i], "shard", str(i))] = node
                        done += docs_of(result)
                    elapsed = max(time.monotonic() - start, 1e-9)
                    progress.update(bar, completed=done, rate=done / elapsed)
            except self.ray.exceptions.RayTaskError as exc:
                for ref in pending:
                    self.ray.cancel(ref)
                cause = getattr(exc, "cause", None)  # the task's own error (e.g. UserError)
                if isinstance(cause, Exception):
                    raise cause from None
                raise
            except self.ray.exceptions.RayError as exc:  # retries spent: a worker/node lost
                for ref in pending:
                    self.ray.cancel(ref)
                first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
                raise UserError(f"{label}: a Ray task failed after {self.cfg.max_retries} "
                                f"retries ({type(exc).__name__}: {first}); finished shards "
                                "are kept: rerun to resume") from None
            if total_docs is None:
                progress.update(bar, total=done)
        return results
