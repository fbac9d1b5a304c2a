"""How far two annotators agree: the relabelled share of a pool against the batch labels.

Each pool's ``batches/agreement.jsonl`` holds copies of batch records that a second
annotator labelled without seeing the first labels (``labels/agreement.jsonl``). For every
id labelled in both, per dimension: exact agreement, agreement within one point, Spearman
and quadratic-weighted kappa, and the mean difference (second − first).

    .venv/bin/python bench/annotation/label_agreement.py [--pool data/annotations/v3]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import cohen_kappa_score

DIMENSIONS = ("professionalism", "readability", "reasoning", "cleanliness")


def read_labels(paths: list[Path]) -> dict[str, dict]:
    out = {}
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                out[row["id"]] = row
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pool", type=Path, default=Path("data/annotations/v3"))
    args = ap.parse_args()
    second = read_labels([args.pool / "labels" / "agreement.jsonl"])
    first = read_labels(sorted((args.pool / "labels").glob("batch_*.jsonl")))
    both = [i for i in second if i in first]
    if not both:
        print(f"error: no id of {args.pool}/labels/agreement.jsonl is labelled in a batch",
              file=sys.stderr)
        return 2
    annotators = sorted({first[i]["annotator"] for i in both})
    print(f"{len(both)} excerpts labelled twice ({second[both[0]]['annotator']} vs "
          f"{', '.join(annotators)})")
    print("dimension | exact | within 1 | Spearman | weighted kappa | mean diff")
    for dim in DIMENSIONS:
        a = np.array([first[i][dim] for i in both])
        b = np.array([second[i][dim] for i in both])
        rho = spearmanr(a, b).statistic
        kappa = cohen_kappa_score(a, b, weights="quadratic", labels=list(range(6)))
        print(f"{dim} | {np.mean(a == b):.0%} | {np.mean(abs(a - b) <= 1):.0%} | "
              f"{rho:.2f} | {kappa:.2f} | {np.mean(b - a):+.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
