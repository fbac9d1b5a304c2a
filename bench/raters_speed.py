"""Throughput of the shipped PRRC raters on the bundled corpus, on one core.

Times the ``prrc`` scorer itself (excerpt cut, text normalization, statistics, encoders and
all four heads) on record batches of the pipeline's size, once per rater kind with every
dimension on that kind, and once with the shipped defaults. Reports documents per second
per core from process CPU time (the figure that measures the code on a shared machine; the
wall-time figure measures the neighbours too), best of ``--repeats``, against the fastText
baseline and the 2,000 docs/s goal.

    .venv/bin/python bench/raters_speed.py --docs 5000 --embedding-docs 200
"""

from __future__ import annotations

import os

# One core, as one worker of the pipeline: no thread pools in tokenizers, BLAS or torch.
os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from metamix.scorers.prrc.raters import PRRCScorer, read_manifest  # noqa: E402
from metamix.scorers.prrc.raters_common import DEFAULT_MODEL_DIR, DIMENSIONS  # noqa: E402

TARGET = 2000.0  # docs/s per core, all four dimensions


def corpus_batches(glob: str, n: int, seed: int, batch_size: int) -> list[pa.RecordBatch]:
    paths = sorted(Path().glob(glob))
    texts = [t for p in paths for t in pq.read_table(p, columns=["text"])["text"].to_pylist()]
    rng = np.random.default_rng(seed)
    chosen = [texts[i] for i in rng.choice(len(texts), size=min(n, len(texts)), replace=False)]
    return [pa.record_batch({"text": pa.array(chosen[i : i + batch_size], pa.string())})
            for i in range(0, len(chosen), batch_size)]


def docs_per_second(scorer: PRRCScorer, batches: list[pa.RecordBatch], repeats: int
                    ) -> tuple[float, float]:
    """(CPU-time rate, wall-time rate), each the best of ``repeats`` passes."""
    scorer.score(batches[0].slice(0, 8))  # load models and encoders outside the timing
    n = sum(b.num_rows for b in batches)
    best_cpu = best_wall = float("inf")
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        for batch in batches:
            scorer.score(batch)
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return n / best_cpu, n / best_wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="data/sample/train/*.parquet")
    parser.add_argument("--docs", type=int, default=5000)
    parser.add_argument("--embedding-docs", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    manifest = read_manifest(args.model_dir)
    batches = corpus_batches(args.corpus, args.docs, args.seed, args.batch_size)
    texts = [t for b in batches for t in b.column(0).to_pylist()]
    print(f"{len(texts)} documents, mean {np.mean([len(t) for t in texts]):.0f} chars; excerpts "
          f"of {manifest['excerpt_chars']} chars; 1 thread; best of {args.repeats}")
    rates: dict[str, float] = {}
    runs = [(kind, kind) for kind in ("fasttext", "static") if kind in manifest["files"]]
    runs.append(("shipped defaults " + str(sorted(set(manifest["defaults"].values()))), None))
    for label, kind in runs:
        kinds = dict.fromkeys(DIMENSIONS, kind) if kind else None
        scorer = PRRCScorer(kinds=kinds, model_dir=str(args.model_dir))
        cpu, wall = docs_per_second(scorer, batches, args.repeats)
        rates[label] = cpu
        ratio = "" if "fasttext" not in rates or kind == "fasttext" else \
            f", {cpu / rates['fasttext']:.2f}x fastText"
        verdict = "OK" if cpu >= TARGET else "BELOW GOAL"
        print(f"{label}, 4 dimensions: {cpu:,.0f} docs/s per core (CPU time), {wall:,.0f} "
              f"docs/s wall{ratio}  [{verdict}, goal {TARGET:,.0f}]")
    if "embedding" in manifest["files"] and args.embedding_docs:
        sample = corpus_batches(args.corpus, args.embedding_docs, args.seed, args.batch_size)
        scorer = PRRCScorer(kinds=dict.fromkeys(DIMENSIONS, "embedding"),
                            model_dir=str(args.model_dir), device="cpu", torch_threads=1)
        cpu, wall = docs_per_second(scorer, sample, 1)
        print(f"embedding (full MiniLM-L6, 256 tokens), 4 dimensions: {cpu:,.1f} docs/s per "
              f"core (CPU time), {wall:,.1f} docs/s wall")


if __name__ == "__main__":
    main()
