"""bench/annotation/merge_seed.py: merging and validating the human PRRC label batches."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parent.parent


def _load_merge_seed() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "merge_seed", REPO / "bench" / "annotation" / "merge_seed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


merge_seed = _load_merge_seed()


def _seed_dir(tmp_path: Path, n: int = 20) -> list[dict]:
    inputs = []
    for i in range(n):
        text = f"excerpt number {i}"
        inputs.append({"id": f"doc{i}", "domain": "web", "excerpt": text,
                       "excerpt_sha256": hashlib.sha256(text.encode()).hexdigest()})
    (tmp_path / "seed_batch_1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in inputs))
    return inputs


def _label(row: dict, score: int = 3, **overrides) -> dict:
    label = {"id": row["id"], "excerpt_sha256": row["excerpt_sha256"], "note": "",
             **{dim: score for dim in merge_seed.DIMENSIONS}}
    label.update(overrides)
    return label


def _write_labels(tmp_path: Path, labels: list[dict], tail: str = "") -> None:
    text = "".join(json.dumps(r) + "\n" for r in labels) + tail
    (tmp_path / "labels_batch_1.jsonl").write_text(text)


def test_merge_writes_a_fixed_split_and_tolerates_a_torn_tail(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    inputs = _seed_dir(tmp_path)
    _write_labels(tmp_path, [_label(r, i % 6) for i, r in enumerate(inputs[:15])],
                  tail='{"id": "doc15", "excerpt_sha')
    assert merge_seed.main(["--dir", str(tmp_path)]) == 0
    table = pq.read_table(tmp_path / "prrc_seed_v1.parquet")
    assert table.num_rows == 15
    assert set(table.column("rubric_version").to_pylist()) == {1}
    expected_test = merge_seed.test_ids([r["id"] for r in inputs])
    assert len(expected_test) == 4  # 20% of the 20 inputs, whatever is labelled so far
    for doc_id, split in zip(table["id"].to_pylist(), table["split"].to_pylist(), strict=True):
        assert split == ("test" if doc_id in expected_test else "train")
    printed = capsys.readouterr().out
    assert "15 of 20 excerpts labelled" in printed and "professionalism" in printed
    assert merge_seed.main(["--dir", str(tmp_path), "--require-complete"]) == 2


@pytest.mark.parametrize("bad, message", [
    ({"professionalism": 6}, "integer 0..5"),
    ({"reasoning": 2.5}, "integer 0..5"),
    ({"cleanliness": True}, "integer 0..5"),
    ({"excerpt_sha256": "0" * 64}, "does not match"),
    ({"id": "unknown"}, "not in any seed batch"),
])
def test_invalid_labels_are_named(tmp_path: Path, bad: dict, message: str) -> None:
    inputs = _seed_dir(tmp_path, 3)
    _write_labels(tmp_path, [_label(inputs[0]), _label(inputs[1], **bad)])
    with pytest.raises(merge_seed.SeedError, match=message) as exc:
        merge_seed.merge([tmp_path / "seed_batch_1.jsonl"], [tmp_path / "labels_batch_1.jsonl"])
    assert "labels_batch_1.jsonl:2" in str(exc.value)


def test_duplicate_and_corrupt_lines_are_errors(tmp_path: Path) -> None:
    inputs = _seed_dir(tmp_path, 3)
    seeds, labels = [tmp_path / "seed_batch_1.jsonl"], [tmp_path / "labels_batch_1.jsonl"]
    _write_labels(tmp_path, [_label(inputs[0]), _label(inputs[0], 2)])
    with pytest.raises(merge_seed.SeedError, match="already labelled at .*:1"):
        merge_seed.merge(seeds, labels)
    _write_labels(tmp_path, [_label(inputs[0])], tail="not json\n" + json.dumps(
        _label(inputs[1])) + "\n")
    with pytest.raises(merge_seed.SeedError, match=":2: not valid JSON"):
        merge_seed.merge(seeds, labels)
