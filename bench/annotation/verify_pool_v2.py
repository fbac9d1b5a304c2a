"""Check the committed PRRC v2 pool without rebuilding it (no Debian or registry access).

Verifies what annotators and the label merge rely on: every record has the six fields, its
hash matches its excerpt, the excerpt is what ``excerpt(text, 2000)`` hands raters, ids and
excerpts are unique, every batch holds every kind, the agreement file repeats batch records
verbatim, and no excerpt shares a 50-character span with the bundled corpus.

    .venv/bin/python bench/annotation/verify_pool_v2.py
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pool_overlap import (  # noqa: E402
    CorpusOverlap,
    print_kinds_and_finish,
    record_problems,
)

FIELDS = ("id", "kind", "source", "licence", "excerpt", "excerpt_sha256")
REPO = Path(__file__).resolve().parents[2]


def read(path: Path) -> list[dict]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise SystemExit(f"error: {path}:{n}: not valid JSON ({exc.msg})") from None
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=Path, default=REPO / "data/annotations/v2/batches")
    parser.add_argument("--min-kinds", type=int, default=12)
    args = parser.parse_args()
    problems: list[str] = []
    batch_files = sorted(args.pool.glob("batch_*.jsonl"))
    if not batch_files:
        raise SystemExit(f"error: no batch_*.jsonl in {args.pool}")
    batches = {p.name: read(p) for p in batch_files}
    records = [r for rows in batches.values() for r in rows]
    kinds = Counter(r.get("kind") for r in records)
    for name, rows in batches.items():
        for i, r in enumerate(rows, start=1):
            where = f"{name}:{i}"
            problems += record_problems(where, r, FIELDS)
            if tuple(r) != FIELDS:
                continue
            if not r["id"].startswith(r["kind"] + ":"):
                problems.append(f"{where}: id {r['id']!r} does not start with its kind")
        missing = set(kinds) - {r.get("kind") for r in rows}
        if missing:
            problems.append(f"{name}: lacks kind(s) {sorted(missing)}")
    for field in ("id", "excerpt_sha256"):
        repeats = [v for v, n in Counter(r[field] for r in records).items() if n > 1]
        if repeats:
            problems.append(f"{len(repeats)} repeated {field}s, e.g. {repeats[0]}")
    if len(kinds) < args.min_kinds:
        problems.append(f"only {len(kinds)} kinds, {args.min_kinds} required")
    by_id = {r["id"]: r for r in records}
    agreement = read(args.pool / "agreement.jsonl")
    for i, r in enumerate(agreement, start=1):
        if by_id.get(r.get("id")) != r:
            problems.append(f"agreement.jsonl:{i}: not a verbatim batch record")
    overlap = CorpusOverlap([REPO / "data/sample/train", REPO / "data/sample/validation"])
    shared = [r["id"] for r in records if overlap.shared_windows(r["excerpt"])[0]]
    if shared:
        problems.append(f"{len(shared)} excerpts share a 50-char span with the corpus, "
                        f"e.g. {shared[0]}")

    print(f"{len(records)} records in {len(batches)} batches, {len(agreement)} agreement "
          f"records ({len(agreement) / len(records):.1%}), {len(kinds)} kinds")
    print(f"corpus overlap: {len(shared)} excerpts share a 50-char span "
          f"({overlap.documents:,} corpus documents indexed)")
    print_kinds_and_finish(kinds, batches, problems)


if __name__ == "__main__":
    main()
