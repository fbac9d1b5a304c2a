"""Do the PRRC raters score a damaged copy of a text below the text itself?

The v3 annotation pool (``data/annotations/v3/batches``) holds seeded corrupted copies of
real excerpts (OCR noise, stripped punctuation, keyword stuffing, boilerplate around it,
case folding, a tokenised dump), each linked to its original by ``parent_id``. This scores
originals and copies with the raters of a model folder (default: the shipped ones, each
dimension's default kind) and prints, per transform and level, the share of pairs where the
copy scores strictly below its original, on each dimension. Pairs are those whose original
falls in the test split of ``merge_seed.py`` (20% of each kind's originals by id hash), so
raters trained on the v3 labels are judged on pairs they never saw; ``--all`` uses every pair.
No labels are read: a copy is worse than its original by construction.

    .venv/bin/python bench/raters_corruption_pairs.py [--model-dir DIR] [--all]

Goal (issue 25): OCR-noise and keyword-stuffing copies below the original on readability and
cleanliness in >= 90% of pairs.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa

from metamix.scorers.prrc.raters import PRRCScorer
from metamix.scorers.prrc.raters_common import DIMENSIONS

REPO = Path(__file__).resolve().parent.parent
POOL = REPO / "data" / "annotations" / "v3" / "batches"
GOAL = 0.9
GOAL_TRANSFORMS = ("ocr-noise", "keyword-stuffing")
GOAL_DIMENSIONS = ("readability", "cleanliness")


def _test_ids() -> object:
    spec = importlib.util.spec_from_file_location(
        "merge_seed", REPO / "bench" / "annotation" / "merge_seed.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.test_ids


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", default=None)
    ap.add_argument("--all", action="store_true", help="every pair, not only test originals")
    args = ap.parse_args()
    rows = {}
    for path in sorted(POOL.glob("batch_*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                rows[row["id"]] = row
    originals: dict[str, list[str]] = defaultdict(list)
    for doc_id, row in rows.items():
        if row["parent_id"] is None:
            originals[row["kind"]].append(doc_id)
    test_ids = _test_ids()
    chosen = set().union(*(test_ids(ids) for ids in originals.values()))  # type: ignore[operator]
    pairs = [(r["parent_id"], i, r["corruption"]) for i, r in rows.items()
             if r["parent_id"] and (args.all or r["parent_id"] in chosen)]
    needed = sorted({p for p, _, _ in pairs} | {c for _, c, _ in pairs})
    scorer = PRRCScorer(model_dir=args.model_dir)
    scores = scorer.score(pa.record_batch({"text": [rows[i]["excerpt"] for i in needed]}))
    value = {dim: dict(zip(needed, scores[f"prrc_{dim}"].to_numpy(), strict=True))
             for dim in DIMENSIONS}
    below: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for parent, copy, corruption in pairs:
        for dim in DIMENSIONS:
            below[corruption][dim].append(bool(value[dim][copy] < value[dim][parent]))
    print(f"{len(pairs)} pairs ({'all' if args.all else 'test originals'}); raters: "
          f"{scorer.resolved()}")
    print("corruption | pairs | " + " | ".join(DIMENSIONS) + "  (share of copies below)")
    for corruption in sorted(below):
        shares = [np.mean(below[corruption][d]) for d in DIMENSIONS]
        print(f"{corruption} | {len(below[corruption][DIMENSIONS[0]])} | "
              + " | ".join(f"{s:.0%}" for s in shares))
    for dim in GOAL_DIMENSIONS:
        hits = [b for c, by in below.items() if c.split(":")[0] in GOAL_TRANSFORMS
                for b in by[dim]]
        share = float(np.mean(hits)) if hits else float("nan")
        print(f"goal {dim}: OCR-noise + keyword-stuffing copies below the original in "
              f"{share:.1%} of {len(hits)} pairs (goal >= {GOAL:.0%}: "
              f"{'met' if share >= GOAL else 'missed'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
