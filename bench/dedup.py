"""Near-duplicate detection on the bundled corpus: metamix's MinHash LSH against datasketch
(speed) and datatrove's MinHash dedup (which pairs it finds).

* speed: CPU seconds of one process (docs/s per core) for metamix's whole dedup pass
  (exact keys, signatures, LSH clusters) and for datasketch's ``MinHash`` on the same word
  5-grams (on an evenly spaced sample; it is slow). The goal: datasketch if it reaches
  2,000 docs/s per core, else ours, which must.
* agreement: datatrove's MinHash stages (signatures, buckets, clusters) with the same
  n-gram size, tuned to the same Jaccard threshold with datasketch's balanced banding
  (``optimal_bands``: 9 bands x 13 rows for 0.8 and 128 permutations); both sides'
  clusters become document pairs, and the share of datatrove's pairs that metamix also
  finds must be >= 95%. Documents with fewer than 5 words are left out of the
  comparison (datatrove gives them no shingle).

    python bench/dedup.py [--threshold 0.8] [--num-perm 128] [--datasketch-docs 1500]

Needs the bench extra (``make setup-bench``). CPU time counts this process only, so other
jobs on the machine inflate wall time but not the per-core rates.
"""

from __future__ import annotations

import argparse
import itertools
import re
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from metamix.pipeline.dedup import exact_key, representatives
from metamix.pipeline.minhash import MinHasher, lsh_clusters, lsh_params, optimal_bands

REPO = Path(__file__).resolve().parent.parent
_WORD = re.compile(r"[^\W_]+")


def load_corpus() -> tuple[list[str], list[str]]:
    paths = sorted((REPO / "data" / "sample" / "train").glob("*.parquet"))
    if not paths:
        sys.exit("data/sample/train is missing")
    table = pa.concat_tables(pq.read_table(p, columns=["id", "text"]) for p in paths)
    ids, texts = table.column("id").to_pylist(), table.column("text").to_pylist()
    keep = [i for i, t in enumerate(texts) if len(_WORD.findall(t)) >= 5]
    return [ids[i] for i in keep], [texts[i] for i in keep]


def cluster_pairs(labels: np.ndarray) -> set[tuple[int, int]]:
    """Every pair of documents sharing a cluster label."""
    order = np.argsort(labels, kind="stable")
    pairs: set[tuple[int, int]] = set()
    for _, members in itertools.groupby(order.tolist(), key=lambda i: labels[i]):
        group = sorted(members)
        pairs.update(itertools.combinations(group, 2))
    return pairs


def metamix_pass(texts: list[str], threshold: float, num_perm: int
                 ) -> tuple[np.ndarray, float]:
    started = time.process_time()
    exact = representatives([exact_key(t) for t in texts])
    hasher = MinHasher(num_perm=num_perm, ngram=5, seed=0)
    sig = np.concatenate([hasher.signatures(pa.array(texts[i:i + 2048]))
                          for i in range(0, len(texts), 2048)])
    bands, rows, bar = lsh_params(threshold, num_perm)
    labels = lsh_clusters(sig, bands, rows, min_agreement=bar, same_as=exact)
    return labels, time.process_time() - started


def datasketch_rate(texts: list[str], num_perm: int, n_docs: int) -> float:
    from datasketch import MinHash

    step = max(len(texts) // n_docs, 1)
    sample = texts[::step][:n_docs]
    started = time.process_time()
    for text in sample:
        words = _WORD.findall(text.lower())
        shingles = {" ".join(words[i:i + 5]).encode() for i in range(max(len(words) - 4, 1))}
        m = MinHash(num_perm=num_perm, seed=1)
        m.update_batch(list(shingles))
    return len(sample) / (time.process_time() - started)


def datatrove_labels(ids: list[str], texts: list[str], bands: int, rows: int
                     ) -> tuple[np.ndarray, float]:
    from datatrove.data import Document
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupSignature,
    )
    from datatrove.utils.hashing import HashConfig

    # sha1: datatrove 0.10's xxhash wrapper passes str, which xxhash 4 rejects
    config = MinhashConfig(n_grams=5, num_buckets=bands, hashes_per_bucket=rows, seed=1,
                           hash_config=HashConfig(precision=64, hash_fc="sha1"))
    docs = [Document(text=t, id=i) for i, t in zip(ids, texts, strict=True)]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        started = time.process_time()
        sigs, buckets, clusters = (str(work / name) for name in ("sigs", "buckets", "clusters"))
        for step in ([docs, MinhashDedupSignature(sigs, config=config)],
                     [MinhashDedupBuckets(sigs, buckets, config=config)],
                     [MinhashDedupCluster(buckets, clusters, config=config,
                                          save_cluster_id=True)]):
            tasks = bands if isinstance(step[0], MinhashDedupBuckets) else 1
            LocalPipelineExecutor(pipeline=step, tasks=tasks, workers=1,
                                  logging_dir=str(work / "logs" / str(id(step)))).run()
        seconds = time.process_time() - started
        labels = np.arange(len(docs)) + (1 << 40)           # alone unless listed
        data = (work / "clusters" / "000000.clusters").read_bytes() \
            if (work / "clusters" / "000000.clusters").is_file() else b""
        for doc, cluster in struct.iter_unpack("<II", data):
            labels[doc] = cluster
    return labels, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--num-perm", type=int, default=128)
    parser.add_argument("--datasketch-docs", type=int, default=1500)
    args = parser.parse_args()
    ids, texts = load_corpus()
    bands, rows = optimal_bands(args.threshold, args.num_perm)
    print(f"bundled corpus: {len(texts):,} documents with >= 5 words, "
          f"{sum(map(len, texts)) / 1e6:.1f} MB; threshold {args.threshold}, "
          f"{args.num_perm} permutations; datatrove {bands} bands x {rows} rows, metamix "
          "{} bands x {} rows verified at agreement >= {:.3f}".format(
              *lsh_params(args.threshold, args.num_perm)))

    metamix_pass(texts[:64], args.threshold, args.num_perm)     # compile / load the kernels
    ours, ours_s = metamix_pass(texts, args.threshold, args.num_perm)
    ours_rate = len(texts) / ours_s
    sketch_rate = datasketch_rate(texts, args.num_perm, args.datasketch_docs)
    theirs, theirs_s = datatrove_labels(ids, texts, bands, rows)

    ours_pairs, their_pairs = cluster_pairs(ours), cluster_pairs(theirs)
    common = len(ours_pairs & their_pairs)
    recall = common / len(their_pairs) if their_pairs else 1.0
    precision = common / len(ours_pairs) if ours_pairs else 1.0
    print(f"{'':<34}{'docs/s/core':>12}{'vs datasketch':>15}")
    print(f"{'metamix (exact + MinHash + LSH)':<34}{ours_rate:>12,.0f}"
          f"{ours_rate / sketch_rate:>14.1f}x")
    print(f"{'datasketch MinHash (sample)':<34}{sketch_rate:>12,.0f}{1.0:>14.1f}x")
    print(f"{'datatrove MinHash stages 1-3':<34}{len(texts) / theirs_s:>12,.0f}"
          f"{len(texts) / theirs_s / sketch_rate:>14.1f}x")
    print(f"goal >= 2,000 docs/s/core: datasketch {'meets' if sketch_rate >= 2000 else 'misses'}"
          f" it, metamix {'meets' if ours_rate >= 2000 else 'misses'} it")
    print(f"duplicate pairs: datatrove {len(their_pairs):,}, metamix {len(ours_pairs):,}, both "
          f"{common:,}; agreement (share of datatrove's pairs metamix finds) {recall:.1%} "
          f"(goal >= 95%), share of metamix's pairs datatrove finds {precision:.1%}")
    print(f"clustered documents: datatrove {int((theirs < (1 << 40)).sum()):,}, metamix "
          f"{int(np.bincount(ours, minlength=len(ours))[ours].__gt__(1).sum()):,}")


if __name__ == "__main__":
    main()
