"""Throughput of the shipped PRRC raters on the bundled corpus, single thread.

Reports documents per second per core for scoring all four dimensions (excerpt cut and text
normalization included), from both wall time and process CPU time: on a shared machine the
CPU-time figure is the one that measures the code, wall time measures the neighbours too.

    .venv/bin/python bench/raters_speed.py --docs 5000 --embedding-docs 200
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from metamix.scorers.prrc.raters import read_manifest
from metamix.scorers.prrc.raters_common import (
    DEFAULT_MODEL_DIR,
    DIMENSIONS,
    excerpts,
    fasttext_text,
)
from metamix.scorers.prrc.raters_embedding import LinearHead, embed
from metamix.scorers.prrc.raters_fasttext import FastTextRater

FASTTEXT_TARGET = 2000.0  # docs/s per core


def corpus_texts(glob: str, n: int, seed: int) -> list[str]:
    paths = sorted(Path().glob(glob))
    texts = [t for p in paths for t in pq.read_table(p, columns=["text"])["text"].to_pylist()]
    rng = np.random.default_rng(seed)
    return [texts[i] for i in rng.choice(len(texts), size=min(n, len(texts)), replace=False)]


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="data/sample/train/*.parquet")
    parser.add_argument("--docs", type=int, default=5000)
    parser.add_argument("--embedding-docs", type=int, default=200)
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    manifest = read_manifest(args.model_dir)
    texts = corpus_texts(args.corpus, args.docs, args.seed)
    chars = manifest["excerpt_chars"]
    print(f"{len(texts)} documents, mean {np.mean([len(t) for t in texts]):.0f} chars; "
          f"excerpts of {chars} chars; 1 thread")

    raters = {d: FastTextRater(args.model_dir / manifest["files"]["fasttext"][d])
              for d in DIMENSIONS}
    raters[DIMENSIONS[0]].score(["warm up"])
    def all_dimensions() -> None:
        lines = [fasttext_text(t) for t in excerpts(texts, chars)]  # as the prrc scorer does
        for rater in raters.values():
            rater.score_lines(lines)

    wall, cpu = timed(all_dimensions)
    per_dim_wall, per_dim_cpu = timed(lambda: raters[DIMENSIONS[0]].score(excerpts(texts, chars)))
    verdict = "OK" if len(texts) / cpu >= FASTTEXT_TARGET else "BELOW TARGET"
    print(f"fastText, 4 dimensions: {len(texts) / cpu:,.0f} docs/s per core (CPU time), "
          f"{len(texts) / wall:,.0f} docs/s wall  [{verdict}, target {FASTTEXT_TARGET:,.0f}]")
    print(f"fastText, 1 dimension:  {len(texts) / per_dim_cpu:,.0f} docs/s per core (CPU time), "
          f"{len(texts) / per_dim_wall:,.0f} docs/s wall")

    sample = texts[: args.embedding_docs]
    heads = [LinearHead.load(args.model_dir / manifest["files"]["embedding"][d])
             for d in DIMENSIONS]
    embed(["warm up"], device="cpu")
    wall, cpu = timed(lambda: [h.score(v) for v in [embed(excerpts(sample, chars),
                                                          device="cpu")] for h in heads])
    print(f"embedding (MiniLM-L6, 256 tokens), 4 dimensions: {len(sample) / cpu:,.1f} docs/s "
          f"per core (CPU time), {len(sample) / wall:,.1f} docs/s wall")


if __name__ == "__main__":
    main()
