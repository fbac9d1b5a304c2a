"""Merge the human PRRC label batches into one validated seed set with a fixed test split.

Inputs are the excerpts handed to annotators (``seed_batch_*.jsonl``: id, domain, excerpt,
excerpt_sha256) and their answers (``labels_batch_*.jsonl``: id, excerpt_sha256, the four
dimensions, note). Every label must name an excerpt that was handed out, by id *and* hash
(a changed excerpt means the label belongs to other text), carry integer scores in 0..5, and
appear once. The test split is the 20% of the *seed inputs* with the lowest sha256 of the id,
so it is exactly 20% of the full set and a document keeps its split however many labels exist
yet — a model evaluated on a partial set never trained on a test document of the full set.

    .venv/bin/python bench/annotation/merge_seed.py            # merge what exists
    .venv/bin/python bench/annotation/merge_seed.py --require-complete
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

DIMENSIONS = ("professionalism", "readability", "reasoning", "cleanliness")
RUBRIC_VERSION = 1
TEST_PERCENT = 20


class SeedError(ValueError):
    """The label files contradict the inputs; the message says which file and line."""


def test_ids(input_ids: list[str], test_percent: int = TEST_PERCENT) -> set[str]:
    """The ``test_percent``% of the seed inputs whose id hashes lowest: fixed by the inputs
    alone (not by which labels exist yet), independent of file order."""
    ranked = sorted(input_ids, key=lambda i: hashlib.sha256(i.encode("utf-8")).hexdigest())
    return set(ranked[: round(len(ranked) * test_percent / 100)])


def read_jsonl(path: Path, *, tolerate_torn_tail: bool) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) pairs. A last line without newline that does not parse is a
    write in progress (annotators append while we read) and is skipped when tolerated."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    rows = []
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            if tolerate_torn_tail and i == len(lines):
                print(f"note: {path}:{i}: incomplete last line skipped", file=sys.stderr)
                continue
            raise SeedError(f"{path}:{i}: not valid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise SeedError(f"{path}:{i}: expected a JSON object")
        rows.append((i, obj))
    return rows


def load_inputs(paths: list[Path]) -> dict[str, dict[str, Any]]:
    inputs: dict[str, dict[str, Any]] = {}
    for path in paths:
        for line, row in read_jsonl(path, tolerate_torn_tail=False):
            doc_id = row.get("id")
            if doc_id in inputs:
                raise SeedError(f"{path}:{line}: input id {doc_id!r} appears twice")
            inputs[doc_id] = row
    return inputs


def validate_label(row: dict[str, Any], where: str, inputs: dict[str, dict[str, Any]]) -> None:
    doc_id = row.get("id")
    if doc_id not in inputs:
        raise SeedError(f"{where}: id {doc_id!r} is not in any seed batch")
    if row.get("excerpt_sha256") != inputs[doc_id]["excerpt_sha256"]:
        raise SeedError(f"{where}: excerpt_sha256 of {doc_id!r} does not match its seed batch "
                        "(the label was given to different text)")
    for dim in DIMENSIONS:
        value = row.get(dim)
        # bool is an int subclass; a JSON true is not a score.
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 5:
            raise SeedError(f"{where}: {dim} of {doc_id!r} must be an integer 0..5, "
                            f"got {value!r}")


def merge(seed_paths: list[Path], label_paths: list[Path]) -> pa.Table:
    """Validated labels joined with their inputs, ordered as the seed batches list them."""
    inputs = load_inputs(seed_paths)
    labels: dict[str, dict[str, Any]] = {}
    first_seen: dict[str, str] = {}
    for path in label_paths:
        for line, row in read_jsonl(path, tolerate_torn_tail=True):
            where = f"{path}:{line}"
            validate_label(row, where, inputs)
            if row["id"] in labels:
                raise SeedError(f"{where}: id {row['id']!r} already labelled at "
                                f"{first_seen[row['id']]}")
            labels[row["id"]] = row
            first_seen[row["id"]] = where
    ids = [doc_id for doc_id in inputs if doc_id in labels]
    columns: dict[str, pa.Array] = {
        "id": pa.array(ids, pa.string()),
        "domain": pa.array([inputs[i]["domain"] for i in ids], pa.string()),
        "excerpt_sha256": pa.array([inputs[i]["excerpt_sha256"] for i in ids], pa.string()),
    }
    for dim in DIMENSIONS:
        columns[dim] = pa.array([labels[i][dim] for i in ids], pa.int8())
    columns["rubric_version"] = pa.array([RUBRIC_VERSION] * len(ids), pa.int16())
    test = test_ids(list(inputs))
    columns["split"] = pa.array(["test" if i in test else "train" for i in ids], pa.string())
    return pa.table(columns)


def distribution_report(table: pa.Table) -> str:
    """Counts of each score 0..5 per dimension, overall and per split, as a text table."""
    splits = table.column("split").to_pylist()
    lines = [f"{'dimension':<16}{'split':<7}{'n':>5}  " + "".join(f"{s:>6}" for s in range(6))]
    for dim in DIMENSIONS:
        values = table.column(dim).to_pylist()
        for name in ("all", "train", "test"):
            chosen = [v for v, s in zip(values, splits, strict=True) if name in ("all", s)]
            counts = Counter(chosen)
            lines.append(f"{dim:<16}{name:<7}{len(chosen):>5}  "
                         + "".join(f"{counts.get(s, 0):>6}" for s in range(6)))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("data/annotations"))
    parser.add_argument("--out", type=Path, default=None,
                        help="default: <dir>/prrc_seed_v1.parquet")
    parser.add_argument("--require-complete", action="store_true",
                        help="fail unless every seed excerpt has a label")
    args = parser.parse_args(argv)
    seeds = sorted(args.dir.glob("seed_batch_*.jsonl"))
    labels = sorted(args.dir.glob("labels_batch_*.jsonl"))
    if not seeds:
        print(f"error: no seed_batch_*.jsonl in {args.dir}", file=sys.stderr)
        return 2
    try:
        table = merge(seeds, labels)
    except SeedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    n_inputs = len(load_inputs(seeds))
    if args.require_complete and table.num_rows < n_inputs:
        print(f"error: {table.num_rows} of {n_inputs} excerpts labelled", file=sys.stderr)
        return 2
    out = args.out or args.dir / "prrc_seed_v1.parquet"
    tmp = out.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp)
    tmp.replace(out)
    n_test = table.column("split").to_pylist().count("test")
    print(f"{out}: {table.num_rows} of {n_inputs} excerpts labelled "
          f"({table.num_rows - n_test} train, {n_test} test)")
    print(distribution_report(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
