"""Parts of a heuristic ``metamix score`` measured alone, on the bundled training corpus:
the word tokenizer's boundary scan, Parquet writing at zstd level 1 (used) vs 3, what a
worker pays to start when the forkserver has not loaded the scorer kernels vs when it has
(``metamix.scorers.warm_kernels``), what OpenBLAS's threads burn when numpy and scipy load
(default, the short wait every command sets, one thread as in a worker), and 2 workers
scoring and writing the corpus with Arrow's jemalloc and glibc's defaults vs with the
pool's malloc settings (``WORKER_MALLOC_ENV``). ``score_speed.py`` measures the whole
command.

    .venv/bin/python bench/score_parts.py [--pairs 3]

CPU seconds (``time.process_time`` / children's rusage); each figure is the best or the
median of repeats, as printed.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parent.parent
TRAIN = REPO / "data" / "sample" / "train"
sys.path.insert(0, str(REPO))


def corpus_texts() -> list[str]:
    texts: list[str] = []
    for path in sorted(TRAIN.glob("*.parquet")):
        texts += pq.read_table(path, columns=["text"]).column("text").to_pylist()
    return texts


def word_scan(texts: list[str], repeats: int = 3) -> tuple[float, float]:
    """(best CPU seconds of the scan over every 1,000-document batch, MB of text)."""
    from metamix.scorers._charclass import ASCII_FLAGS, byte_classes, utf8_buffer
    from metamix.scorers._token_scan import scan_token_starts

    batches = []
    for i in range(0, len(texts), 1000):
        data, size, offsets = utf8_buffer(pa.array(texts[i:i + 1000], pa.string()))
        batches.append((data, size, offsets, byte_classes(data, size)))
    first = batches[0]
    scan_token_starts(first[0], first[1], first[2], first[3].space, first[3].leads,
                      first[3].lead_flags, ASCII_FLAGS)   # load the kernels
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        for data, size, offsets, c in batches:
            scan_token_starts(data, size, offsets, c.space, c.leads, c.lead_flags, ASCII_FLAGS)
        best = min(best, time.process_time() - started)
    return best, sum(b[1] for b in batches) / 1e6


def parquet_writes(repeats: int = 3) -> dict[int, tuple[float, float]]:
    """{zstd level: (best CPU seconds to write every training file in memory, MB)} with the
    stage writer's options (no dictionary for id/text)."""
    from metamix.pipeline.shard_tasks import PARQUET_OPTIONS, UNIQUE_COLUMNS

    tables = [pq.read_table(p) for p in sorted(TRAIN.glob("*.parquet"))]
    out = {}
    for level in (1, 3):
        best, size = float("inf"), 0
        for _ in range(repeats):
            started, size = time.process_time(), 0
            for table in tables:
                buf = io.BytesIO()
                options = {**PARQUET_OPTIONS, "compression_level": level}
                with pq.ParquetWriter(buf, table.schema, **options, use_dictionary=[
                        n for n in table.schema.names if n not in UNIQUE_COLUMNS]) as writer:
                    for batch in table.to_batches(1000):
                        writer.write_batch(batch)
                size += buf.tell()
            best = min(best, time.process_time() - started)
        out[level] = (best, size / 1e6)
    return out


WORKERS_SCRIPT = r"""
import os, resource, sys, time
import numba, pandas, pyarrow as pa, pyarrow.parquet as pq
from metamix.scorers.registry import HEURISTIC_FAMILIES, SCORERS, load_builtin
load_builtin()
texts = pq.read_table(sorted(__import__("glob").glob(sys.argv[2] + "/*.parquet"))[0],
                      columns=["text"]).column("text").to_pylist()[:1000]
started = time.process_time()
if sys.argv[1] == "warm":
    import metamix.scorers.warm_kernels
parent = time.process_time() - started
pids = []
for _ in range(2):
    pid = os.fork()
    if pid == 0:
        batch = pa.record_batch([pa.array(texts, pa.string())], names=["text"])
        for name in HEURISTIC_FAMILIES:
            SCORERS[name]().score(batch)
        os._exit(0)
    pids.append(pid)
for pid in pids:
    os.waitpid(pid, 0)
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(parent + ru.ru_utime + ru.ru_stime)
"""


def worker_start(pairs: int) -> dict[str, list[float]]:
    """CPU of a process that forks 2 workers each scoring 1,000 documents with the five
    families, without and with the kernel warm-up first (interleaved, fresh processes)."""
    runs: dict[str, list[float]] = {"cold": [], "warm": []}
    for _ in range(pairs):
        for mode in runs:
            out = subprocess.run([sys.executable, "-c", WORKERS_SCRIPT, mode, str(TRAIN)],
                                 cwd=REPO, capture_output=True, text=True, check=True)
            runs[mode].append(float(out.stdout.strip().splitlines()[-1]))
    return runs


def _clean_env(*drop: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in drop}


def openblas_spin(repeats: int) -> dict[str, float]:
    """Median CPU of a fresh process that imports numpy and scipy.linalg (two OpenBLAS
    copies), by OpenBLAS setting."""
    from metamix.pipeline.executor import THREAD_ENV_VARS

    base = _clean_env(*THREAD_ENV_VARS, "OPENBLAS_THREAD_TIMEOUT")
    variants = {"default": {}, "OPENBLAS_THREAD_TIMEOUT=20": {"OPENBLAS_THREAD_TIMEOUT": "20"},
                "OPENBLAS_NUM_THREADS=1": {"OPENBLAS_NUM_THREADS": "1"}}
    runs: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(repeats):
        for name, extra in variants.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run([sys.executable, "-c", "import numpy, scipy.linalg"],
                           env={**base, **extra}, check=True)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            runs[name].append(after.ru_utime - before.ru_utime
                              + after.ru_stime - before.ru_stime)
    return {k: statistics.median(v) for k, v in runs.items()}


MEMORY_SCRIPT = r"""
import glob, io, os, resource, sys
import numba, pandas, pyarrow as pa, pyarrow.parquet as pq
from metamix.pipeline.executor import _init_worker
from metamix.pipeline.shard_tasks import PARQUET_OPTIONS
from metamix.scorers.registry import HEURISTIC_FAMILIES, SCORERS, load_builtin
load_builtin()
import metamix.scorers.warm_kernels
files = sorted(glob.glob(sys.argv[1] + "/*.parquet"))
pids = []
for w in range(2):
    pid = os.fork()
    if pid == 0:
        _init_worker(None, 1)   # as a pool worker: Arrow's allocator chosen there
        scorers = [SCORERS[name]() for name in HEURISTIC_FAMILIES]
        for path in files[w::2]:
            table = pq.read_table(path)
            buf = io.BytesIO()
            with pq.ParquetWriter(buf, table.schema, **PARQUET_OPTIONS) as writer:
                for batch in table.to_batches(1000):
                    for s in scorers:
                        s.score(batch)
                    writer.write_batch(batch)
        os._exit(0)
    pids.append(pid)
for pid in pids:
    os.waitpid(pid, 0)
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(ru.ru_utime + ru.ru_stime, ru.ru_stime, ru.ru_minflt)
"""


def worker_memory(pairs: int) -> dict[str, list[tuple[float, float, int]]]:
    """(CPU, sys CPU, minor page faults) of 2 forked workers scoring and writing half the
    corpus each, with glibc's defaults and Arrow's jemalloc vs with the pool's settings
    (interleaved, fresh processes; the kernels are loaded before the fork)."""
    from metamix.pipeline.executor import WORKER_MALLOC_ENV

    base = _clean_env(*WORKER_MALLOC_ENV, "ARROW_DEFAULT_MEMORY_POOL")
    variants = {"defaults": base, "pool settings": {**base, **WORKER_MALLOC_ENV}}
    runs: dict[str, list[tuple[float, float, int]]] = {k: [] for k in variants}
    for _ in range(pairs):
        for name, env in variants.items():
            out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(TRAIN)], cwd=REPO,
                                 env=env, capture_output=True, text=True, check=True)
            cpu, sys_cpu, faults = out.stdout.split()
            runs[name].append((float(cpu), float(sys_cpu), int(faults)))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    seconds, mb = word_scan(corpus_texts())
    print(f"word scan: {seconds:.3f} s CPU for {mb:.1f} MB ({mb / seconds:.0f} MB/s)")
    writes = parquet_writes()
    (s1, m1), (s3, m3) = writes[1], writes[3]
    print(f"Parquet writes of the training files: zstd 1 {s1:.3f} s, {m1:.1f} MB; "
          f"zstd 3 {s3:.3f} s, {m3:.1f} MB (level 3: {s3 / s1 - 1:+.0%} CPU, "
          f"{m3 / m1 - 1:+.0%} size)")
    runs = worker_start(args.pairs)
    cold, warm = statistics.median(runs["cold"]), statistics.median(runs["warm"])
    print(f"2 forked workers x 1,000 documents, CPU in all: cold {cold:.2f} s, after the "
          f"kernel warm-up {warm:.2f} s ({cold - warm:+.2f} s saved; medians of "
          f"{args.pairs}: cold {[round(x, 2) for x in runs['cold']]}, "
          f"warm {[round(x, 2) for x in runs['warm']]})")
    spin = openblas_spin(5)
    print("import numpy + scipy.linalg, CPU (median of 5): " + ", ".join(
        f"{k} {v:.3f} s" for k, v in spin.items()))
    memory = worker_memory(args.pairs)
    med = {k: [statistics.median(r[i] for r in v) for i in range(3)]
           for k, v in memory.items()}
    (c0, s0, f0), (c1, s1, f1) = med["defaults"], med["pool settings"]
    print(f"2 workers scoring + writing the corpus (medians of {args.pairs} pairs): glibc "
          f"defaults + jemalloc {c0:.2f} s CPU (sys {s0:.2f}), {f0:,.0f} page faults; pool "
          f"malloc settings + glibc for Arrow {c1:.2f} s (sys {s1:.2f}), {f1:,.0f} faults "
          f"({c1 - c0:+.2f} s; per pair "
          f"{[round(b[0] - a[0], 2) for a, b in zip(*memory.values(), strict=True)]})")


if __name__ == "__main__":
    main()
