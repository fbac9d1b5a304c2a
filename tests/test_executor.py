"""One worker pool per command: stages share workers, workers keep warm stages, and each
worker's native thread pools are sized so workers x threads <= cores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from rich.console import Console

from metamix.pipeline import executor
from metamix.pipeline.executor import (
    PRELOAD,
    THREAD_ENV_VARS,
    WORKER_MALLOC_ENV,
    WorkerPool,
    run_tasks,
    threads_per_worker,
    worker_cache,
)
from metamix.pipeline.stages import reuse_warm

QUIET = Console(quiet=True)


def worker_facts(task: int) -> tuple[int, int, str | None, bool]:
    """(task, pid, OMP_NUM_THREADS, whether this process has a worker cache)."""
    executor.report_progress(10, 100)
    return task, os.getpid(), os.environ.get("OMP_NUM_THREADS"), worker_cache() is not None


def fail_on_three(task: int) -> int:
    if task == 3:
        raise ValueError("task 3 failed")
    return task


def _run(fn, tasks, pool, label="stage"):  # noqa: ANN001, ANN202
    return run_tasks(fn, tasks, workers=pool.workers, label=label, total_docs=None,
                     console=QUIET, show_progress=False, pool=pool)


def test_stages_share_one_pool_of_workers() -> None:
    with WorkerPool(2) as pool:
        first = _run(worker_facts, list(range(6)), pool)
        second = _run(worker_facts, list(range(6, 12)), pool)
        lone = _run(worker_facts, [12], pool)  # the pool is up: even a lone task uses it
    assert [r[0] for r in first + second + lone] == list(range(13))  # in task order
    pids = {r[1] for r in first}
    assert len(pids) <= 2 and os.getpid() not in pids
    assert {r[1] for r in second + lone} <= pids  # no new processes for later stages
    expected_threads = str(threads_per_worker(2))
    assert all(r[2] == expected_threads and r[3] for r in first + second + lone)


def env_var(task: int) -> str:
    return os.environ.get("METAMIX_TEST_VAR", "unset")


def test_forked_workers_see_this_commands_environment(monkeypatch: pytest.MonkeyPatch
                                                      ) -> None:
    """Workers fork from a forkserver that may have started earlier in this process; they
    still see the environment as it is when their pool starts (e.g. credentials set since),
    as spawned workers would."""
    with WorkerPool(2) as pool:      # the forkserver is up after this (if not before)
        assert set(_run(env_var, list(range(4)), pool)) == {"unset"}
    monkeypatch.setenv("METAMIX_TEST_VAR", "set-later")
    with WorkerPool(2) as pool:
        assert set(_run(env_var, list(range(4)), pool)) == {"set-later"}


def blas_threads(task: int) -> list[int]:
    from threadpoolctl import threadpool_info

    return [info["num_threads"] for info in threadpool_info()]


@pytest.mark.parametrize("preload", [[], ["numba"]])
def test_workers_blas_pools_are_limited_though_numpy_loaded_before_the_fork(
        preload: list[str]) -> None:
    """numpy (and its BLAS pool, sized at import) is loaded in the forkserver, before the
    worker's thread limit exists; the limit must still apply to it, and to the OpenMP pool
    numba starts in each worker when the forkserver loaded numba (a scoring run's pool)."""
    import numpy  # noqa: F401 - makes sure the BLAS library is loaded here too

    with WorkerPool(2, preload) as pool:
        pools = _run(blas_threads, list(range(4)), pool)
    assert all(pools) and {n for p in pools for n in p} == {threads_per_worker(2)}


def forkserver_settings(task: int) -> tuple[list[tuple[str, str]], str]:
    """The thread limits and malloc settings in the environment the forkserver (this
    worker's parent) started with, and this worker's Arrow memory pool."""
    import pyarrow as pa

    environ = Path(f"/proc/{os.getppid()}/environ").read_bytes().split(b"\0")
    pairs = dict(v.decode().split("=", 1) for v in environ if b"=" in v)
    keys = {*THREAD_ENV_VARS, *WORKER_MALLOC_ENV}
    return sorted((k, v) for k, v in pairs.items() if k in keys), pa.default_memory_pool(
        ).backend_name


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_the_forkserver_starts_with_the_workers_settings() -> None:
    """OpenBLAS starts cores - 1 threads when numpy or scipy loads, each busy-waiting
    ~0.1 s: a forkserver started with the command's environment burnt that CPU for
    nothing (its workers' pools are limited after the fork). The forkserver starts with
    the workers' limits instead (one thread each, with one worker per core) and malloc
    settings that keep freed buffers for the next batch (glibc reads them at start); workers
    take Arrow's buffers from that malloc. The command's own environment stays as it was.
    A fresh process: the forkserver is per process."""
    import subprocess
    import sys

    script = (
        "import os\n"
        "from tests.test_executor import _run, forkserver_settings\n"
        "from metamix.pipeline.executor import WorkerPool, THREAD_ENV_VARS\n"
        "with WorkerPool(os.cpu_count() or 1, ['numpy']) as p:\n"
        "    print(_run(forkserver_settings, [0, 1], p))\n"
        "print([v for v in THREAD_ENV_VARS if v in os.environ])\n")
    env = {k: v for k, v in os.environ.items()
           if k not in {*THREAD_ENV_VARS, *WORKER_MALLOC_ENV, "ARROW_DEFAULT_MEMORY_POOL"}}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=False, cwd=Path(__file__).resolve().parent.parent, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    expected = sorted([*((var, "1") for var in THREAD_ENV_VARS),
                       ("MALLOC_MMAP_THRESHOLD_", "33554432"),
                       ("MALLOC_TOP_PAD_", "67108864"),
                       ("MALLOC_TRIM_THRESHOLD_", "1073741824")])
    assert out.stdout.split("\n")[:2] == [str([(expected, "system")] * 2), "[]"]


def test_a_worker_started_otherwise_keeps_arrows_allocator() -> None:
    """A worker whose malloc did not start with the settings (a Ray worker runs
    ``_init_worker`` too) would give Arrow's buffers back to the kernel either way: Arrow
    keeps its own allocator there."""
    import subprocess
    import sys

    script = ("import pyarrow as pa\n"
              "from metamix.pipeline.executor import _init_worker\n"
              "before = pa.default_memory_pool().backend_name\n"
              "_init_worker(None, 1)\n"
              "print(before, pa.default_memory_pool().backend_name)\n")
    env = {k: v for k, v in os.environ.items()
           if k not in {*WORKER_MALLOC_ENV, "ARROW_DEFAULT_MEMORY_POOL"}}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=False, cwd=Path(__file__).resolve().parent.parent, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    before, after = out.stdout.split()
    assert after == before != "system"


def test_threads_per_worker_never_oversubscribes() -> None:
    assert threads_per_worker(2, cores=2) == 1
    assert threads_per_worker(2, cores=8) == 4
    assert threads_per_worker(3, cores=8) == 2
    assert threads_per_worker(16, cores=4) == 1


def test_one_worker_or_a_lone_task_runs_in_this_process() -> None:
    with WorkerPool(1) as pool:
        results = _run(worker_facts, [0, 1], pool)
    assert {r[1] for r in results} == {os.getpid()}
    with WorkerPool(4) as pool:
        (result,) = _run(worker_facts, [0], pool)
        assert not pool.started
    assert result[1] == os.getpid() and not result[3]  # no worker cache outside workers


def test_a_failing_task_raises_and_the_pool_still_closes() -> None:
    pool = WorkerPool(2)
    with pytest.raises(ValueError, match="task 3 failed"):
        _run(fail_on_three, list(range(6)), pool)
    pool.close()
    assert not pool.started


class _Stage:
    name = "s"

    def __init__(self, key: str) -> None:
        self.key = key

    def reuse_key(self) -> str:
        return self.key


def test_reuse_warm_keeps_the_first_instance_per_key() -> None:
    a1, a2, b = _Stage("a"), _Stage("a"), _Stage("b")
    cache: dict[str, object] = {}
    assert reuse_warm([a1, b], cache) == [a1, b]  # type: ignore[list-item]
    assert reuse_warm([a2], cache)[0] is a1  # type: ignore[list-item]
    assert reuse_warm([a2], None)[0] is a2  # type: ignore[list-item]


def test_score_with_two_workers_matches_one_worker(tmp_path: Path) -> None:
    from metamix.config import load_config
    from metamix.pipeline.runner import run_score
    from tests.conftest import PROSE, write_config, write_jsonl

    (tmp_path / "data").mkdir()
    for s in range(4):
        write_jsonl(tmp_path / "data" / f"{s}.jsonl", [
            {"id": f"{s}-{i}", "text": f"{PROSE} {i} {s}. " * (1 + i % 3), "domain": "web"}
            for i in range(60)])
    outputs = []
    for workers in (1, 2):
        cfg = load_config(write_config(
            tmp_path / f"w{workers}.yaml", run=f"w{workers}",
            out_dir=str(tmp_path / f"out{workers}"), workers=workers,
            input={"paths": [str(tmp_path / "data" / "*.jsonl")]},
            score={"batch_size": 25, "scorers": [{"name": "gopher_repetition"}]}))
        run_score(cfg, QUIET)
        outputs.append({p.relative_to(cfg.run_dir).as_posix(): p.read_bytes()
                        for p in sorted(cfg.run_dir.rglob("*.*")) if p.suffix in (
                            ".parquet", ".arrow")})
    assert outputs[0] == outputs[1]
    assert any(k.startswith("tokens/scored/") for k in outputs[0])


def modules_loaded_before_task(task: int) -> list[str]:
    import sys

    loaded = [m for m in ("pandas", "metamix.scorers.c4", "metamix.scorers.fineweb")
              if m in sys.modules]
    import numba
    from numba.core import config

    numba.set_num_threads(1)   # numba's pool starts (as in every worker's set-up)
    config.reload_config()     # what every kernel compile does first: it must not fail
    return loaded


def test_the_forkserver_imports_the_runs_scorers_once() -> None:
    """Workers fork with the run's scorer modules (and pandas, which pyarrow imports in
    each process) already imported. A fresh process: the forkserver is per process."""
    import subprocess
    import sys

    script = (
        "from tests.test_executor import _run, modules_loaded_before_task\n"
        "from metamix.pipeline.executor import WorkerPool\n"
        "with WorkerPool(2, ['metamix.scorers.c4', 'metamix.scorers.no_such_module']) as p:\n"
        "    print(sorted(set(sum(_run(modules_loaded_before_task, [0, 1], p), []))))\n")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=False, cwd=Path(__file__).resolve().parent.parent, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "['metamix.scorers.c4', 'pandas']"


def kernels_loaded_before_task(task: int) -> list[str]:
    """Names of the scorer kernels (and families warmed) this worker starts with."""
    import sys

    from numba.core.registry import CPUDispatcher

    warm = sys.modules.get("metamix.scorers.warm_kernels")
    loaded = [f"{name}.{attr}" for name, module in list(sys.modules.items())
              if name.startswith("metamix.scorers.")
              for attr, value in vars(module).items()
              if isinstance(value, CPUDispatcher) and value.signatures]
    return [*(warm.WARMED if warm else []), *loaded]


def test_a_scoring_runs_workers_start_with_its_kernels_loaded() -> None:
    """The run's forkserver imports numba, the scorer modules, then the warm-up, which
    scores a probe batch: workers fork with the kernels loaded (not ~0.75 s each to
    load them). Only the run's families are warmed. A fresh process: the forkserver is
    per process."""
    import ast
    import subprocess
    import sys

    script = (
        "from tests.test_executor import _run, kernels_loaded_before_task\n"
        "from metamix.pipeline.executor import WorkerPool\n"
        "mods = ['numba', 'metamix.scorers.c4', 'metamix.scorers.warm_kernels']\n"
        "with WorkerPool(2, mods) as p:\n"
        "    print(sorted(set(sum(_run(kernels_loaded_before_task, [0, 1], p), []))))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=False, cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 0, out.stderr[-2000:]
    loaded = ast.literal_eval(out.stdout.strip())
    assert "c4" in loaded and "gopher_quality" not in loaded
    assert "metamix.scorers._token_scan._scan" in loaded   # the word tokenizer C4 uses
    assert "metamix.scorers.c4._sentence_counts" in loaded


def test_only_runs_with_heuristic_families_preload_numba_and_the_warm_up() -> None:
    """numba and the kernel warm-up cost the forkserver ~1 s: a run without heuristic
    families (model scorers only) preloads just its scorer modules."""
    from types import SimpleNamespace

    from metamix.pipeline.runner import open_pool
    from metamix.scorers.registry import SCORERS, load_builtin

    load_builtin()
    cfg = SimpleNamespace(executor="local", n_workers=2)
    with open_pool(cfg, [SCORERS["langid"](), SCORERS["c4"]()]) as pool:
        extra = pool.preload[len(PRELOAD):]
    assert extra == ["numba", "metamix.scorers.model_based.language_id", "metamix.scorers.c4",
                     "metamix.scorers.warm_kernels"]
    with open_pool(cfg, [SCORERS["langid"]()]) as pool:
        assert pool.preload[len(PRELOAD):] == ["metamix.scorers.model_based.language_id"]
