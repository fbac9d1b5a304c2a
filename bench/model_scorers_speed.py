"""Docs/s per core of each model-based scorer, and its mean per domain on validation.

    .venv/bin/python bench/model_scorers_speed.py [--docs 4000] [--batch-size 1000]

Speed: one process, the shipped default models, batches of ``--batch-size`` documents
drawn from every domain of the bundled train split (the documents whose id hashes lowest,
so every domain appears in proportion); model loading is timed separately. The per-domain
means on the validation split are a sanity check that the signals separate domains the way
their targets say they should.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("RAYON_NUM_THREADS", "1")       # tokenizers: one core, like a worker
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from metamix.scorers.base import Scorer  # noqa: E402
from metamix.scorers.model_based.dsir import DsirScorer  # noqa: E402
from metamix.scorers.model_based.fasttext_quality import FastTextQualityScorer  # noqa: E402
from metamix.scorers.model_based.language_id import LangIdScorer  # noqa: E402
from metamix.scorers.model_based.ngram_perplexity import NgramPerplexityScorer  # noqa: E402


def load_split(split: str, n_docs: int | None) -> pa.Table:
    table = pa.concat_tables(pq.read_table(p, columns=["id", "text", "domain"])
                             for p in sorted((REPO / "data/sample" / split).glob("*.parquet")))
    if n_docs is None or n_docs >= table.num_rows:
        return table
    keys = [hashlib.blake2b(i.encode(), digest_size=8).digest() for i in
            table.column("id").to_pylist()]
    return table.take(np.argsort(keys, kind="stable")[:n_docs])


def scorers() -> list[Scorer]:
    return [FastTextQualityScorer(), DsirScorer(), DsirScorer(length_normalized=True),
            NgramPerplexityScorer(), LangIdScorer()]


def label(s: Scorer) -> str:
    extra = " (length-normalized)" if getattr(s, "length_normalized", False) else ""
    return s.name + extra


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args()
    table = load_split("train", args.docs)
    batches = table.to_batches(max_chunksize=args.batch_size)
    mb = sum(len(t.encode()) for t in table.column("text").to_pylist()) / 1e6
    print(f"speed: {table.num_rows} train docs ({mb:.1f} MB), batches of {args.batch_size}, "
          f"1 process\n")
    print(f"{'scorer':34} {'load s':>7} {'docs/s':>9} {'MB/s':>7}")
    for s in scorers():
        start = time.perf_counter()
        s.score(batches[0].slice(0, 1))           # loads the model
        load = time.perf_counter() - start
        start = time.perf_counter()
        for b in batches:
            s.score(b)
        secs = time.perf_counter() - start
        print(f"{label(s):34} {load:7.2f} {table.num_rows / secs:9.0f} {mb / secs:7.2f}")

    val = load_split("validation", None)
    domains = sorted(set(val.column("domain").to_pylist()))
    print(f"\nvalidation means per domain ({val.num_rows} docs)\n")
    print(f"{'column':44}" + "".join(f"{d:>10}" for d in domains))
    for s in scorers():
        out = {}
        for b in val.to_batches(max_chunksize=args.batch_size):
            for k, v in s.score(b).items():
                out.setdefault(k, []).append(v)
        for col, parts in out.items():
            values = pa.chunked_array(parts)
            if col == "lang":
                en = pc.equal(values, "en").to_numpy(zero_copy_only=False)
                row = [np.mean(en[np.asarray(val.column("domain").to_pylist()) == d])
                       for d in domains]
                col = "lang == en (fraction)"
            else:
                x = values.to_numpy().astype(np.float64)
                row = [np.nanmedian(x[np.asarray(val.column("domain").to_pylist()) == d])
                       for d in domains]
                col = f"{col} (median)"
            print(f"{col:44}" + "".join(f"{v:10.3f}" for v in row))


if __name__ == "__main__":
    main()
