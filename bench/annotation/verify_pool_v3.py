"""Check the committed PRRC v3 pool without rebuilding it (no Debian or registry access).

Verifies what annotators and the label merge rely on: every record has the eight fields in
order, its hash matches its excerpt, the excerpt is what ``excerpt(text, 2000)`` hands raters,
ids and excerpts are unique, every batch holds every kind, every corrupted copy points at a
real original in the same batch and names its corruption, no source is reserved for
evaluation, no excerpt equals a v2 excerpt or shares a 50-character span with the bundled
corpus or the v2 pool, and the agreement file repeats batch records verbatim.

    .venv/bin/python bench/annotation/verify_pool_v3.py
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

FIELDS = ("id", "kind", "source", "licence", "excerpt", "excerpt_sha256", "parent_id",
          "corruption")
LINE_BREAKERS = ("\u2028", "\u2029", "\x85")
REPO = Path(__file__).resolve().parents[2]


def read(path: Path) -> list[dict]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        if not line:
            continue
        if any(ch in line for ch in LINE_BREAKERS):
            raise SystemExit(f"error: {path}:{n}: raw U+2028/U+2029/NEL (must be escaped)")
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise SystemExit(f"error: {path}:{n}: not valid JSON ({exc.msg})") from None
    return rows


def reserved_names(path: Path) -> tuple[str, ...]:
    return tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines()
                 if line.strip() and not line.startswith("#"))


def check_records(batches: dict[str, list[dict]], reserved: tuple[str, ...],
                  min_kinds: int, min_per_kind: int) -> list[str]:
    """Problems with the batches themselves (no corpus access): the logic tests exercise."""
    problems: list[str] = []
    records = [r for rows in batches.values() for r in rows]
    kinds = Counter(r.get("kind") for r in records)
    for name, rows in batches.items():
        ids = {r.get("id"): r for r in rows}
        for i, r in enumerate(rows, start=1):
            where = f"{name}:{i}"
            problems += record_problems(where, r, FIELDS)
            if tuple(r) != FIELDS:
                continue
            if not r["id"].startswith(r["kind"] + ":"):
                problems.append(f"{where}: id {r['id']!r} does not start with its kind")
            if hit := next((x for x in reserved if x in r["source"]), None):
                problems.append(f"{where}: source {r['source']!r} is reserved ({hit!r})")
            if (r["parent_id"] is None) != (r["corruption"] is None):
                problems.append(f"{where}: parent_id and corruption must be both null or both set")
            elif r["parent_id"] is not None:
                parent = ids.get(r["parent_id"])
                if parent is None:
                    problems.append(f"{where}: parent {r['parent_id']!r} is not in {name}")
                elif parent["corruption"] is not None or parent["kind"] != r["kind"]:
                    problems.append(f"{where}: parent {r['parent_id']!r} is itself corrupted "
                                    "or of another kind")
                elif ":" not in r["corruption"]:
                    problems.append(f"{where}: corruption {r['corruption']!r} lacks a level")
        missing = set(kinds) - {r.get("kind") for r in rows}
        if missing:
            problems.append(f"{name}: lacks kind(s) {sorted(missing)}")
    for field in ("id", "excerpt_sha256"):
        repeats = [v for v, n in Counter(r.get(field) for r in records).items() if n > 1]
        if repeats:
            problems.append(f"{len(repeats)} repeated {field}s, e.g. {repeats[0]}")
    if len(kinds) < min_kinds:
        problems.append(f"only {len(kinds)} kinds, {min_kinds} required")
    small = sorted(k for k, n in kinds.items() if n < min_per_kind)
    if small:
        problems.append(f"kind(s) with under {min_per_kind} excerpts: {small}")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=Path, default=REPO / "data/annotations/v3/batches")
    parser.add_argument("--v2", type=Path, default=REPO / "data/annotations/v2/batches")
    parser.add_argument("--min-kinds", type=int, default=12)
    parser.add_argument("--min-per-kind", type=int, default=20)
    parser.add_argument("--min-total", type=int, default=3300)
    args = parser.parse_args()
    batch_files = sorted(args.pool.glob("batch_*.jsonl"))
    if not batch_files:
        raise SystemExit(f"error: no batch_*.jsonl in {args.pool}")
    batches = {p.name: read(p) for p in batch_files}
    records = [r for rows in batches.values() for r in rows]
    reserved = reserved_names(REPO / "docs/reserved-for-evaluation.txt")
    problems = check_records(batches, reserved, args.min_kinds, args.min_per_kind)
    if len(records) < args.min_total:
        problems.append(f"only {len(records)} records, {args.min_total} required")
    by_id = {r.get("id"): r for r in records}
    agreement = read(args.pool / "agreement.jsonl")
    for i, r in enumerate(agreement, start=1):
        if by_id.get(r.get("id")) != r:
            problems.append(f"agreement.jsonl:{i}: not a verbatim batch record")
    v2 = [r for p in sorted(args.v2.glob("batch_*.jsonl")) for r in read(p)]
    v2_hashes = {r["excerpt_sha256"] for r in v2}
    same = [r["id"] for r in records if r.get("excerpt_sha256") in v2_hashes]
    if same:
        problems.append(f"{len(same)} excerpts equal a v2 excerpt, e.g. {same[0]}")
    overlaps = {"corpus": CorpusOverlap([REPO / "data/sample/train",
                                         REPO / "data/sample/validation"]),
                "v2": CorpusOverlap.from_texts([r["excerpt"] for r in v2])}
    shared = {}
    for name, overlap in overlaps.items():
        shared[name] = [r["id"] for r in records
                        if overlap.shared_windows(r.get("excerpt", ""))[0]]
        if shared[name]:
            problems.append(f"{len(shared[name])} excerpts share a 50-char span with {name}, "
                            f"e.g. {shared[name][0]}")

    kinds = Counter(r.get("kind") for r in records)
    copies = Counter(r.get("kind") for r in records if r.get("corruption"))
    print(f"{len(records)} records in {len(batches)} batches, {len(agreement)} agreement "
          f"records ({len(agreement) / len(records):.1%}), {len(kinds)} kinds, "
          f"{sum(copies.values())} corrupted copies")
    print(f"overlap: {len(shared['corpus'])} share a 50-char span with the corpus, "
          f"{len(shared['v2'])} with v2; {len(same)} equal a v2 excerpt")
    print_kinds_and_finish(kinds, batches, problems, copies)


if __name__ == "__main__":
    main()
