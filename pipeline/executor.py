"""Local executor: runs shard tasks on a process pool with a live progress bar.

Tasks are plain picklable objects and workers only touch their own output files, so the
same task list could be handed to another executor. Workers report (docs, bytes) per
batch through a queue; the parent owns the display.

One ``WorkerPool`` serves a whole command: starting a worker (imports, models) costs
1–3 s of CPU, so the score job's four stages share the same workers, and a
worker keeps the stage objects it has warmed up (loaded models, encoders) for the next shard
of the same stage (``worker_cache``). Each worker gets ``cores // workers`` threads for the
native libraries that start their own (torch, OpenMP, BLAS, Rayon), so workers × threads
never oversubscribe the machine.

Workers live no longer than the command: the forkserver and each worker have the kernel
SIGKILL them when their parent dies, and each worker holds a share of the run lock
(``metamix.base.runlock``), so a rerun cannot start while one still writes. While the
command waits on its pool, Ctrl-C raises between the waits, never inside the pool's locks
(``metamix.base.interrupt.deferred``).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, TypeVar

from rich.console import Console

from metamix.base import interrupt
from metamix.base.progress import make_progress
from metamix.base.runlock import die_with_parent, exit_on_interrupt, join_run_lock

T = TypeVar("T")
R = TypeVar("R")

_progress_queue: Any = None
_worker_cache: dict[str, Any] | None = None
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                   "RAYON_NUM_THREADS", "NUMBA_NUM_THREADS")


#: glibc malloc settings the forkserver starts with (its workers inherit them; read once,
#: when a process starts): a worker allocates and frees the same large buffers for every
#: batch, and glibc's defaults hand them back to the kernel (munmap above a moving
#: threshold, trimming the heap top beyond 128 KiB free), so every batch faulted them in
#: again, zero-filled. With these, freed memory stays in the worker for the next batch (its
#: footprint stays at its peak). A value in the command's environment wins.
WORKER_MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20),
                     "MALLOC_TRIM_THRESHOLD_": str(1 << 30),
                     "MALLOC_TOP_PAD_": str(64 << 20)}


def report_progress(docs: int, nbytes: int) -> None:
    """Called by shard workers after each batch."""
    if _progress_queue is not None:
        _progress_queue.put((docs, nbytes))


def worker_cache() -> dict[str, Any] | None:
    """A dict living as long as this pool worker (one command), or None outside a worker."""
    return _worker_cache


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    return max(1, (cores or os.cpu_count() or 1) // max(1, workers))


def _thread_env(threads: int) -> dict[str, str]:
    return {var: str(threads) for var in THREAD_ENV_VARS}


def _init_worker(q: Any, threads: int, environ: dict[str, str] | None = None) -> None:
    global _progress_queue, _worker_cache
    die_with_parent()
    exit_on_interrupt()
    _progress_queue = q
    _worker_cache = {}
    # This process's malloc read its settings when the process (the forkserver) started:
    # they are in the environment until the command's replaces it below.
    malloc_keeps_buffers = all(var in os.environ for var in WORKER_MALLOC_ENV)
    # A forked worker has the environment the forkserver started with; it takes this
    # command's instead, as a spawned one would (credentials set since, thread limits).
    if environ is not None:
        os.environ.clear()
        os.environ.update(environ)
    join_run_lock()
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    os.environ.update(_thread_env(threads))  # read by the libraries when they load
    import sys

    # Libraries the forkserver imported before forking sized their pools from its
    # environment, not from the variables above: limit those in place.
    if (numba := sys.modules.get("numba")) is not None:
        # numba refuses a new pool size once its pool has started (every kernel compile
        # re-reads NUMBA_NUM_THREADS): keep the size it has, limit what kernels use.
        # (This starts numba's OpenMP pool: limited below with the others.)
        os.environ["NUMBA_NUM_THREADS"] = str(numba.config.NUMBA_NUM_THREADS)
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    if "numpy" in sys.modules:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)   # BLAS / OpenMP pools (the limit stays: not a context)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    if malloc_keeps_buffers and "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
        # Arrow's buffers from that malloc, kept for the next batch, rather than from
        # jemalloc, which purges them within a second (page faults again). Not in a worker
        # started otherwise (Ray's): there glibc's defaults give the buffers back as well.
        import pyarrow as pa

        pa.set_memory_pool(pa.system_memory_pool())


#: Imported once by the forkserver, before it forks the workers. pandas: pyarrow imports
#: it on the first ``pa.array`` from a Python list, in every worker (~0.2 s CPU each).
#: A scoring run adds numba, its scorer modules and ``metamix.scorers.warm_kernels``.
#: ``forkserver_init`` makes the forkserver die with the command.
PRELOAD = ("metamix.pipeline.forkserver_init", "metamix.pipeline.shard_tasks",
           "metamix.pipeline.runner", "pandas")


class WorkerPool:
    """A forkserver process pool started on first use and shared by several
    ``run_tasks`` calls; ``workers <= 1`` runs every task in this process instead."""

    def __init__(self, workers: int, preload: Sequence[str] = ()) -> None:
        """``preload``: more modules every worker will import (the run's scorers), imported
        once by the forkserver instead (a module that fails to import is skipped there)."""
        self.workers = max(1, workers)
        self.preload = list(dict.fromkeys([*PRELOAD, *preload]))
        self._executor: ProcessPoolExecutor | None = None
        self._queue: Any = None

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def started(self) -> bool:
        return self._executor is not None

    def executor(self) -> tuple[ProcessPoolExecutor, Any]:
        if self._executor is None:
            # forkserver: one clean server process imports the shard-task modules once and
            # forks every worker from itself, instead of each spawned worker paying for the
            # interpreter and those imports again. Forking the server, not this process,
            # keeps threads this process started (progress display, tokenizers, Ray
            # clients) out of the children.
            ctx = mp.get_context("forkserver")
            ctx.set_forkserver_preload(self.preload)
            threads = threads_per_worker(self.workers)
            _start_forkserver(threads)
            # SimpleQueue writes to the pipe inside put(): a task's progress items are in
            # the pipe before its result is, so a stage's last drain finds all of them.
            self._queue = ctx.SimpleQueue()
            self._executor = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=ctx, initializer=_init_worker,
                initargs=(self._queue, threads, dict(os.environ)))
        return self._executor, self._queue

    def map(self, fn: Callable[[T], R], tasks: Sequence[T], *, label: str,
            total_docs: int | None, console: Console, show_progress: bool,
            docs_of: Callable[[R], int] | None = None) -> list[R]:
        """``run_tasks`` on this pool (the interface ``RayPool`` shares)."""
        return run_tasks(fn, tasks, workers=self.workers, label=label, total_docs=total_docs,
                         console=console, show_progress=show_progress, pool=self)

    def close(self) -> None:
        if self._executor is not None:
            with interrupt.deferred():   # the shutdown takes the pool's locks
                self._executor.shutdown(wait=True, cancel_futures=True)
                self._executor = None
                self._queue = None
            interrupt.check()


def _start_forkserver(threads: int) -> None:
    """Start the forkserver (if not yet up) with the workers' thread limits and malloc
    settings (``WORKER_MALLOC_ENV``) in its environment, so the libraries it preloads size
    their pools for a worker.

    OpenBLAS starts ``cores - 1`` threads when it loads, and each busy-waits ~0.1 s
    before sleeping: numpy and scipy each bring one, so a forkserver started with this
    process's environment burnt ~0.25 s of CPU on a 2-core machine, and its workers, whose
    BLAS pools re-form after the fork, ~0.15 s more between them (perf, 2 workers).
    Workers still get the limits in ``_init_worker``; a forkserver already up (started by an
    earlier pool in this process) keeps the environment it has."""
    from multiprocessing import forkserver, resource_tracker

    settings = _thread_env(threads)
    settings.update({k: v for k, v in WORKER_MALLOC_ENV.items() if k not in os.environ})
    saved = {var: os.environ.get(var) for var in settings}
    os.environ.update(settings)
    # The forkserver starts with SIGINT blocked (a mask survives fork and exec), so a Ctrl-C
    # while its interpreter starts and imports cannot print a traceback from it; it ignores
    # SIGINT and unblocks it in ``forkserver_init``. Here a Ctrl-C meanwhile stays pending
    # (or goes to another thread) and is not lost. The resource tracker starts first: its
    # start unblocks SIGINT in this thread when it is done (and protects itself alike).
    resource_tracker.ensure_running()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        forkserver.ensure_running()
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


class _LocalQueue:
    def __init__(self) -> None:
        self.items: list[tuple[int, int]] = []

    def put(self, item: tuple[int, int]) -> None:
        self.items.append(item)


def run_tasks(
    fn: Callable[[T], R],
    tasks: Sequence[T],
    *,
    workers: int,
    label: str,
    total_docs: int | None,
    console: Console,
    show_progress: bool,
    pool: WorkerPool | None = None,
) -> list[R]:
    """Run ``fn`` over ``tasks``; results come back in task order whatever the finish order.

    With ``pool`` the tasks run on its workers (started if needed, left running for the
    next call); without, on a pool of ``workers`` started and stopped for this call."""
    if pool is None:
        with WorkerPool(workers) as own:
            return run_tasks(fn, tasks, workers=workers, label=label, total_docs=total_docs,
                             console=console, show_progress=show_progress, pool=own)
    results: list[R | None] = [None] * len(tasks)
    start = time.monotonic()
    with make_progress(console, show_progress) as progress:
        bar = progress.add_task(label, total=total_docs, mb=0.0, rate=0.0)
        done_docs = 0
        done_bytes = 0

        def advance(items: list[tuple[int, int]]) -> None:
            nonlocal done_docs, done_bytes
            for docs, nbytes in items:
                done_docs += docs
                done_bytes += nbytes
            elapsed = max(time.monotonic() - start, 1e-9)
            progress.update(bar, completed=done_docs, mb=done_bytes / 1e6,
                            rate=done_docs / elapsed)

        # A lone task runs here rather than paying for a worker's start, unless the
        # workers are already up (and warm).
        if pool.workers <= 1 or (len(tasks) <= 1 and not pool.started):
            global _progress_queue
            local = _LocalQueue()
            previous, _progress_queue = _progress_queue, local
            try:
                for i, task in enumerate(tasks):
                    results[i] = fn(task)
                    advance(local.items)
                    local.items.clear()
            finally:
                _progress_queue = previous
        else:
            # Ctrl-C raises between the waits, never inside the pool's locks (``deferred``)
            with interrupt.deferred():
                executor, q = pool.executor()
                pending: dict[Future[R], int] = {executor.submit(fn, t): i
                                                 for i, t in enumerate(tasks)}
                try:
                    while pending:
                        interrupt.check()
                        finished, _ = wait(pending, timeout=0.25,
                                           return_when=FIRST_COMPLETED)
                        advance(_drain(q))
                        for fut in finished:
                            results[pending.pop(fut)] = fut.result()
                finally:
                    for fut in pending:
                        fut.cancel()
                advance(_drain(q))
            interrupt.check()
        if total_docs is None:
            progress.update(bar, total=done_docs)
    return [r for r in results if r is not None]


def _drain(q: Any) -> list[tuple[int, int]]:
    items = []
    while not q.empty():
        items.append(q.get())
    return items
