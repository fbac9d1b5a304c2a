"""Merge the human PRRC label batches into one validated, versioned seed set with a fixed
test split.

v1: the excerpts handed to annotators (``seed_batch_*.jsonl``: id, domain, excerpt,
excerpt_sha256) and their answers (``labels_batch_*.jsonl``: id, excerpt_sha256, the four
dimensions, note) → ``prrc_seed_v1.parquet``. v2 adds the pool of new kinds of text
(``v2/batches/batch_NN.jsonl``: id, kind, source, licence, excerpt, excerpt_sha256) and its
labels (``v2/labels/batch_NN.jsonl``: id, excerpt_sha256, the four dimensions, note,
annotator) → ``prrc_seed_v2.parquet`` = the v1 rows (kind = their domain, source = the id's
package prefix, same split) + the v2 rows, with columns id, kind, source, excerpt_sha256,
the four dimensions, rubric_version, split. v1's file is left as it is. v3 adds the
web-crawl pool (``v3/batches/batch_NN.jsonl``, the v2 fields plus ``parent_id`` and
``corruption`` of corrupted copies) and its labels (``v3/labels/batch_NN.jsonl``) →
``prrc_seed_v3.parquet`` = the v2 rows + the v3 rows, with ``parent_id`` and ``corruption``
columns (null for real text).

Every label must name an excerpt that was handed out, by id *and* hash (a changed excerpt
means the label belongs to other text), carry integer scores in 0..5, and appear once; a v2
label must name its annotator. The test split is the 20% of the *inputs* with the lowest
sha256 of the id (v1: over all its inputs; v2: within each kind, so every kind is tested),
so a document keeps its split however many labels exist yet — a model evaluated on a
partial set never trained on a test document of the full set. A v3 corrupted copy takes
its original's split (the hash of ``parent_id``), so no test text has a copy in training.

    .venv/bin/python bench/annotation/merge_seed.py            # the newest version present
    .venv/bin/python bench/annotation/merge_seed.py --version 1 --require-complete
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
V2_INPUT_FIELDS = ("id", "kind", "source", "licence", "excerpt", "excerpt_sha256")
SEED_SCHEMA = pa.schema([("id", pa.string()), ("kind", pa.string()), ("source", pa.string()),
                         ("excerpt_sha256", pa.string()),
                         *[(d, pa.int8()) for d in DIMENSIONS],
                         ("rubric_version", pa.int16()), ("split", pa.string())])
V3_SCHEMA = SEED_SCHEMA.append(pa.field("parent_id", pa.string())).append(
    pa.field("corruption", pa.string()))


RESERVED_FILE = Path(__file__).resolve().parents[2] / "docs" / "reserved-for-evaluation.txt"


def reserved_names(path: Path = RESERVED_FILE) -> tuple[str, ...]:
    """Packages the issues reserve for evaluation: never a source of labels."""
    if not path.is_file():
        return ()
    return tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines()
                 if line.strip() and not line.startswith("#"))


def is_reserved(row: dict[str, Any], reserved: tuple[str, ...]) -> bool:
    return any(name in f"{row.get('source') or ''} {row['id']}" for name in reserved)


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


def load_inputs(paths: list[Path], fields: tuple[str, ...] = (),
                seen: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """id → input row. With ``fields`` (v2), each row must have them as non-empty strings and
    its excerpt must hash to its ``excerpt_sha256``; ``seen`` holds ids of an earlier
    version that a new id must not repeat."""
    inputs: dict[str, dict[str, Any]] = {}
    for path in paths:
        for line, row in read_jsonl(path, tolerate_torn_tail=False):
            doc_id = row.get("id")
            if doc_id in inputs or (seen and doc_id in seen):
                raise SeedError(f"{path}:{line}: input id {doc_id!r} appears twice")
            for field in fields:
                if not isinstance(row.get(field), str) or not row[field]:
                    raise SeedError(f"{path}:{line}: {field} must be a non-empty string")
            if fields and hashlib.sha256(row["excerpt"].encode("utf-8")).hexdigest() != \
                    row["excerpt_sha256"]:
                raise SeedError(f"{path}:{line}: excerpt of {doc_id!r} does not hash to its "
                                "excerpt_sha256")
            inputs[doc_id] = row
    return inputs


def validate_label(row: dict[str, Any], where: str, inputs: dict[str, dict[str, Any]],
                   require_annotator: bool = False) -> None:
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
    annotator = row.get("annotator")
    if require_annotator and (not isinstance(annotator, str) or not annotator.strip()):
        raise SeedError(f"{where}: label of {doc_id!r} names no annotator")


def read_labels(label_paths: list[Path], inputs: dict[str, dict[str, Any]],
                require_annotator: bool = False) -> dict[str, dict[str, Any]]:
    """Validated labels by id; an id labelled twice is an error naming both lines."""
    labels: dict[str, dict[str, Any]] = {}
    first_seen: dict[str, str] = {}
    for path in label_paths:
        for line, row in read_jsonl(path, tolerate_torn_tail=True):
            where = f"{path}:{line}"
            validate_label(row, where, inputs, require_annotator)
            if row["id"] in labels:
                raise SeedError(f"{where}: id {row['id']!r} already labelled at "
                                f"{first_seen[row['id']]}")
            labels[row["id"]] = row
            first_seen[row["id"]] = where
    return labels


def merge(seed_paths: list[Path], label_paths: list[Path]) -> pa.Table:
    """Validated v1 labels joined with their inputs, ordered as the seed batches list them."""
    inputs = load_inputs(seed_paths)
    labels = read_labels(label_paths, inputs)
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


def merge_v2(v1_seeds: list[Path], v1_labels: list[Path], v2_batches: list[Path],
             v2_labels: list[Path]) -> tuple[pa.Table, dict[str, tuple[int, int]]]:
    """v1 rows then v2 rows (in batch order) with kind and source columns; also
    kind → (labelled, inputs) for v2 so a partial merge shows what is missing."""
    v1 = merge(v1_seeds, v1_labels).to_pylist()
    v1_inputs = load_inputs(v1_seeds)
    inputs = load_inputs(v2_batches, V2_INPUT_FIELDS, seen=v1_inputs)
    labels = read_labels(v2_labels, inputs, require_annotator=True)
    by_kind: dict[str, list[str]] = {}
    for doc_id, row in inputs.items():
        by_kind.setdefault(row["kind"], []).append(doc_id)
    test = set().union(*(test_ids(ids) for ids in by_kind.values()))
    rows = [{"id": r["id"], "kind": r["domain"], "source": r["id"].split(":", 1)[0],
             "excerpt_sha256": r["excerpt_sha256"], **{d: r[d] for d in DIMENSIONS},
             "rubric_version": RUBRIC_VERSION, "split": r["split"]} for r in v1]
    # v2 excerpts were labelled with the v1 rubrics plus the calibration notes that the v2
    # rubrics (scorers/prrc/rubrics/*.v2.md) write down
    rows += [{"id": i, "kind": inputs[i]["kind"], "source": inputs[i]["source"],
              "excerpt_sha256": inputs[i]["excerpt_sha256"],
              **{d: labels[i][d] for d in DIMENSIONS}, "rubric_version": 2,
              "split": "test" if i in test else "train"} for i in inputs if i in labels]
    coverage = {kind: (sum(i in labels for i in ids), len(ids))
                for kind, ids in sorted(by_kind.items())}
    return pa.Table.from_pylist(rows, schema=SEED_SCHEMA), coverage


def merge_v3(v1_seeds: list[Path], v1_labels: list[Path], v2_batches: list[Path],
             v2_labels: list[Path], v3_batches: list[Path], v3_labels: list[Path]
             ) -> tuple[pa.Table, dict[str, tuple[int, int]]]:
    """The v2 rows (but those from a package reserved for evaluation) then the v3 rows (in
    batch order); coverage is of the v3 kinds."""
    v2, _ = merge_v2(v1_seeds, v1_labels, v2_batches, v2_labels)
    seen = {**load_inputs(v1_seeds), **load_inputs(v2_batches, V2_INPUT_FIELDS)}
    inputs = load_inputs(v3_batches, V2_INPUT_FIELDS, seen=seen)
    for doc_id, row in inputs.items():
        parent = row.get("parent_id")
        if is_reserved(row, reserved_names()):
            raise SeedError(f"v3 input {doc_id!r}: its source is reserved for evaluation")
        if parent is not None and (parent not in inputs or inputs[parent].get("parent_id")):
            raise SeedError(f"v3 input {doc_id!r}: parent_id {parent!r} is not an original "
                            "of the v3 batches")
    labels = read_labels(v3_labels, inputs, require_annotator=True)
    by_kind: dict[str, list[str]] = {}
    for doc_id, row in inputs.items():
        if row.get("parent_id") is None:
            by_kind.setdefault(row["kind"], []).append(doc_id)
    test = set().union(*(test_ids(ids) for ids in by_kind.values()))
    # earlier pools drew some excerpts from packages since reserved for evaluation
    reserved = reserved_names()
    rows = [{**r, "parent_id": None, "corruption": None} for r in v2.to_pylist()
            if not is_reserved(r, reserved)]
    rows += [{"id": i, "kind": inputs[i]["kind"], "source": inputs[i]["source"],
              "excerpt_sha256": inputs[i]["excerpt_sha256"],
              **{d: labels[i][d] for d in DIMENSIONS}, "rubric_version": 2,
              "split": "test" if (inputs[i].get("parent_id") or i) in test else "train",
              "parent_id": inputs[i].get("parent_id"), "corruption": inputs[i].get("corruption")}
             for i in inputs if i in labels]
    kinds: dict[str, list[str]] = {}
    for doc_id, row in inputs.items():
        kinds.setdefault(row["kind"], []).append(doc_id)
    coverage = {kind: (sum(i in labels for i in ids), len(ids))
                for kind, ids in sorted(kinds.items())}
    return pa.Table.from_pylist(rows, schema=V3_SCHEMA), coverage


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


def write_table(table: pa.Table, out: Path) -> None:
    tmp = out.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp)
    tmp.replace(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("data/annotations"))
    parser.add_argument("--version", choices=("auto", "1", "2", "3"), default="auto",
                        help="auto: the newest version whose <dir>/vN/batches holds batches")
    parser.add_argument("--out", type=Path, default=None,
                        help="default: <dir>/prrc_seed_v<version>.parquet")
    parser.add_argument("--require-complete", action="store_true",
                        help="fail unless every excerpt handed out has a label")
    args = parser.parse_args(argv)
    seeds = sorted(args.dir.glob("seed_batch_*.jsonl"))
    labels = sorted(args.dir.glob("labels_batch_*.jsonl"))
    v2_batches = sorted((args.dir / "v2" / "batches").glob("batch_*.jsonl"))
    v2_labels = sorted((args.dir / "v2" / "labels").glob("batch_*.jsonl"))
    v3_batches = sorted((args.dir / "v3" / "batches").glob("batch_*.jsonl"))
    v3_labels = sorted((args.dir / "v3" / "labels").glob("batch_*.jsonl"))
    version = args.version if args.version != "auto" else (
        "3" if v3_batches else "2" if v2_batches else "1")
    if not seeds:
        print(f"error: no seed_batch_*.jsonl in {args.dir}", file=sys.stderr)
        return 2
    for needed, batches in (("2", v2_batches), ("3", v3_batches)):
        if version >= needed and not batches:
            print(f"error: no batch_*.jsonl in {args.dir / f'v{needed}' / 'batches'}",
                  file=sys.stderr)
            return 2
    try:
        if version == "1":
            table, coverage = merge(seeds, labels), {}
            n_inputs = len(load_inputs(seeds))
        elif version == "2":
            table, coverage = merge_v2(seeds, labels, v2_batches, v2_labels)
            n_inputs = len(load_inputs(seeds)) + sum(total for _, total in coverage.values())
        else:
            table, coverage = merge_v3(seeds, labels, v2_batches, v2_labels, v3_batches,
                                       v3_labels)
            reserved = reserved_names()
            n_inputs = (len(load_inputs(seeds))
                        + sum(not is_reserved(r, reserved)
                              for r in load_inputs(v2_batches).values())
                        + sum(total for _, total in coverage.values()))
    except SeedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.require_complete and table.num_rows < n_inputs:
        missing = {k: total - done for k, (done, total) in coverage.items() if done < total}
        print(f"error: {table.num_rows} of {n_inputs} excerpts labelled"
              + (f"; unlabelled v{version} excerpts per kind: {missing}" if missing else ""),
              file=sys.stderr)
        return 2
    out = args.out or args.dir / f"prrc_seed_v{version}.parquet"
    write_table(table, out)
    n_test = table.column("split").to_pylist().count("test")
    print(f"{out}: {table.num_rows} of {n_inputs} excerpts labelled "
          f"({table.num_rows - n_test} train, {n_test} test)")
    if coverage:
        print(f"v{version} kinds (labelled/excerpts): "
              + ", ".join(f"{k} {done}/{total}" for k, (done, total) in coverage.items()))
    print(distribution_report(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
