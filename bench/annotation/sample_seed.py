"""Choose the documents of the PRRC seed annotation set and cut their excerpts.

Stratified by domain (equal shares) and, within a domain, over quintile cells of two
heuristic signals (word count × fraction of lines ending in terminal punctuation), so
short fragments, boilerplate-heavy pages and clean long prose all appear. The signals only
pick *which* documents get read; the labels come from reading the excerpts.

    .venv/bin/python bench/annotation/sample_seed.py --scored out/demo/scored --n 660
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from metamix.scorers.prrc.rubrics import excerpt

SIGNALS = ("rps_doc_word_count", "rps_lines_ending_with_terminal_punctution_mark")
EXCERPT_CHARS = 2000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scored", type=Path, default=Path("out/demo/scored"))
    parser.add_argument("--n", type=int, default=660)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--out", type=Path, default=Path("data/annotations"))
    args = parser.parse_args()

    table = pq.read_table(sorted(args.scored.glob("*.parquet")),
                          columns=["id", "text", "domain", *SIGNALS])
    rng = np.random.default_rng(args.seed)
    domains = sorted(set(table.column("domain").to_pylist()))
    per_domain = args.n // len(domains)
    chosen: list[int] = []
    dom = np.array(table.column("domain").to_pylist())
    for domain in domains:
        rows = np.flatnonzero(dom == domain)
        cells = np.zeros(len(rows), dtype=np.int64)
        for signal in SIGNALS:
            values = np.nan_to_num(table.column(signal).to_numpy()[rows], nan=-1.0)
            ranks = values.argsort(kind="stable").argsort(kind="stable")
            cells = cells * 5 + (ranks * 5 // len(rows))
        buckets = [list(rng.permutation(rows[cells == c])) for c in np.unique(cells)]
        picked: list[int] = []
        while len(picked) < per_domain and any(buckets):
            for bucket in buckets:
                if bucket and len(picked) < per_domain:
                    picked.append(int(bucket.pop()))
        chosen.extend(picked)

    order = rng.permutation(len(chosen))
    ids = table.column("id").to_pylist()
    texts = table.column("text").to_pylist()
    args.out.mkdir(parents=True, exist_ok=True)
    batches: list[list[dict[str, str]]] = [[] for _ in range(args.batches)]
    for k, i in enumerate(order):
        row = chosen[int(i)]
        cut = excerpt(texts[row], EXCERPT_CHARS)
        batches[k % args.batches].append({
            "id": ids[row], "domain": str(dom[row]), "excerpt": cut,
            "excerpt_sha256": hashlib.sha256(cut.encode()).hexdigest()})
    for b, rows in enumerate(batches, start=1):
        path = args.out / f"seed_batch_{b}.jsonl"
        with open(path, "w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        print(f"{path}: {len(rows)} documents")


if __name__ == "__main__":
    main()
