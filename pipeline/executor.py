"""Local executor: runs shard tasks on a process pool with a live progress bar.

Tasks are plain picklable objects and workers only touch their own output files, so the
same task list could be handed to another executor. Workers report (docs, bytes) per
batch through a queue; the parent owns the display.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, TypeVar

from rich.console import Console

from metamix.base.progress import make_progress

T = TypeVar("T")
R = TypeVar("R")

_progress_queue: Any = None


def report_progress(docs: int, nbytes: int) -> None:
    """Called by shard workers after each batch."""
    if _progress_queue is not None:
        _progress_queue.put((docs, nbytes))


def _init_worker(q: Any) -> None:
    global _progress_queue
    _progress_queue = q
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


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
) -> list[R]:
    """Run ``fn`` over ``tasks``; results come back in task order whatever the finish order."""
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

        if workers <= 1 or len(tasks) <= 1:
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
            ctx = mp.get_context("spawn")
            q = ctx.Queue()
            with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=ctx,
                                     initializer=_init_worker, initargs=(q,)) as pool:
                pending: dict[Future[R], int] = {pool.submit(fn, t): i
                                                 for i, t in enumerate(tasks)}
                while pending:
                    finished, _ = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
                    advance(_drain(q))
                    for fut in finished:
                        results[pending.pop(fut)] = fut.result()
                advance(_drain(q))
        if total_docs is None:
            progress.update(bar, total=done_docs)
    return [r for r in results if r is not None]


def _drain(q: Any) -> list[tuple[int, int]]:
    items = []
    while True:
        try:
            items.append(q.get_nowait())
        except queue.Empty:
            return items
