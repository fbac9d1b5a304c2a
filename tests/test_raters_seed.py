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


# --- v2: new kinds of text on top of v1 ------------------------------------------------------

def _v2_dir(tmp_path: Path, kinds: tuple[str, ...] = ("readme", "log"), n: int = 10
            ) -> tuple[list[dict], list[dict]]:
    """v1 with 20 labelled inputs, and v2 batches of ``n`` excerpts per kind (unlabelled)."""
    v1 = _seed_dir(tmp_path)
    _write_labels(tmp_path, [_label(r, i % 6) for i, r in enumerate(v1)])
    batch = []
    for kind in kinds:
        for i in range(n):
            text = f"{kind} excerpt {i}"
            batch.append({"id": f"{kind}:file{i}#0", "kind": kind, "source": f"pkg-{kind}",
                          "licence": "GPL-2+", "excerpt": text,
                          "excerpt_sha256": hashlib.sha256(text.encode()).hexdigest()})
    (tmp_path / "v2" / "batches").mkdir(parents=True)
    (tmp_path / "v2" / "labels").mkdir()
    _write_v2(tmp_path / "v2" / "batches" / "batch_01.jsonl", batch)
    return v1, batch


def _write_v2(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_merge_v2_adds_kinds_and_keeps_v1(tmp_path: Path,
                                          capsys: pytest.CaptureFixture) -> None:
    v1, batch = _v2_dir(tmp_path)
    labelled = [r for r in batch if not r["id"].startswith("log:file9")]
    _write_v2(tmp_path / "v2" / "labels" / "batch_01.jsonl",
              [_label(r, 2, annotator="ann-1") for r in labelled])
    assert merge_seed.main(["--dir", str(tmp_path), "--require-complete"]) == 2
    assert "unlabelled v2 excerpts per kind: {'log': 1}" in capsys.readouterr().err
    assert merge_seed.main(["--dir", str(tmp_path)]) == 0  # auto → v2
    assert not (tmp_path / "prrc_seed_v1.parquet").exists()
    table = pq.read_table(tmp_path / "prrc_seed_v2.parquet")
    assert table.column_names == ["id", "kind", "source", "excerpt_sha256",
                                  *merge_seed.DIMENSIONS, "rubric_version", "split"]
    rows = table.to_pylist()
    assert len(rows) == 20 + 19
    v1_test = merge_seed.test_ids([r["id"] for r in v1])
    for row in rows[:20]:
        assert row["kind"] == "web" and row["source"] == row["id"]  # v1 ids have no ':'
        assert row["split"] == ("test" if row["id"] in v1_test else "train")
    for kind in ("readme", "log"):
        ids = [r["id"] for r in batch if r["kind"] == kind]
        expected = merge_seed.test_ids(ids)  # 2 of 10, chosen within the kind
        assert len(expected) == 2
        for row in rows[20:]:
            if row["kind"] == kind:
                assert row["source"] == f"pkg-{kind}" and row["professionalism"] == 2
                assert row["split"] == ("test" if row["id"] in expected else "train")
    assert "v2 kinds (labelled/excerpts): log 9/10, readme 10/10" in capsys.readouterr().out
    assert merge_seed.main(["--dir", str(tmp_path), "--version", "1"]) == 0
    assert pq.read_table(tmp_path / "prrc_seed_v1.parquet").num_rows == 20


@pytest.mark.parametrize("change, message", [
    ({"annotator": ""}, "names no annotator"),
    ({"annotator": None}, "names no annotator"),
    ({"id": "doc3"}, "not in any seed batch"),  # a v1 id is no v2 excerpt
    ({"readability": -1}, "integer 0..5"),
])
def test_invalid_v2_labels_are_named(tmp_path: Path, change: dict, message: str) -> None:
    _, batch = _v2_dir(tmp_path)
    label = {**_label(batch[0], 3, annotator="ann-1"), **change}
    _write_v2(tmp_path / "v2" / "labels" / "batch_01.jsonl",
              [_label(batch[1], annotator="ann-1"), label])
    with pytest.raises(merge_seed.SeedError, match=message) as exc:
        merge_seed.merge_v2(sorted(tmp_path.glob("seed_batch_*.jsonl")),
                            sorted(tmp_path.glob("labels_batch_*.jsonl")),
                            [tmp_path / "v2" / "batches" / "batch_01.jsonl"],
                            [tmp_path / "v2" / "labels" / "batch_01.jsonl"])
    assert "v2/labels/batch_01.jsonl:2" in str(exc.value)


@pytest.mark.parametrize("change, message", [
    ({"id": "doc0"}, "appears twice"),  # collides with a v1 id
    ({"excerpt": "edited after hashing"}, "does not hash to its excerpt_sha256"),
    ({"kind": ""}, "kind must be a non-empty string"),
])
def test_invalid_v2_inputs_are_named(tmp_path: Path, change: dict, message: str,
                                     capsys: pytest.CaptureFixture) -> None:
    _, batch = _v2_dir(tmp_path)
    batch[3].update(change)
    _write_v2(tmp_path / "v2" / "batches" / "batch_01.jsonl", batch)
    assert merge_seed.main(["--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "batch_01.jsonl:4" in err


def _v3_dir(tmp_path: Path) -> list[dict]:
    """v1 (the 20 seed rows, labelled), an empty v2 batch, and a v3 batch of 10 originals
    of one kind with one corrupted copy each."""
    _write_labels(tmp_path, [_label(r) for r in _seed_dir(tmp_path)])
    (tmp_path / "v2" / "batches").mkdir(parents=True)
    (tmp_path / "v2" / "batches" / "batch_01.jsonl").write_text("")
    rows = []
    for i in range(10):
        for copy in (False, True):
            text = f"news story {i}" + (" ~ ocr-damaged" if copy else "")
            rows.append({"id": f"news:pkg:s{i}" + ("~ocr-2" if copy else ""), "kind": "news",
                         "source": "pkg 1.0", "licence": "MIT", "excerpt": text,
                         "excerpt_sha256": hashlib.sha256(text.encode()).hexdigest(),
                         "parent_id": f"news:pkg:s{i}" if copy else None,
                         "corruption": "ocr:2" if copy else None})
    (tmp_path / "v3" / "batches").mkdir(parents=True)
    (tmp_path / "v3" / "labels").mkdir(parents=True)
    (tmp_path / "v3" / "batches" / "batch_01.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows))
    return rows


def test_v3_copies_take_their_originals_split(tmp_path: Path) -> None:
    rows = _v3_dir(tmp_path)
    labels = [_label(r, 1 if r["parent_id"] else 4, annotator="a1") for r in rows[:16]]
    (tmp_path / "v3" / "labels" / "batch_01.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in labels))
    assert merge_seed.main(["--dir", str(tmp_path)]) == 0
    table = pq.read_table(tmp_path / "prrc_seed_v3.parquet").to_pylist()
    v3 = [r for r in table if r["kind"] == "news"]
    assert len(table) == 20 + 16 and len(v3) == 16
    split = {r["id"]: r["split"] for r in v3}
    # 20% of the 10 originals are test, chosen by the originals' ids alone
    test = merge_seed.test_ids([r["id"] for r in rows if r["parent_id"] is None])
    assert len(test) == 2
    for r in v3:
        assert r["split"] == ("test" if (r["parent_id"] or r["id"]) in test else "train")
        assert r["corruption"] == ("ocr:2" if r["parent_id"] else None)
        if r["parent_id"] in split:
            assert split[r["parent_id"]] == r["split"]
    assert {r["parent_id"] for r in table if r["kind"] == "web"} == {None}
    assert merge_seed.main(["--dir", str(tmp_path), "--require-complete"]) == 2


def test_v3_leaves_out_rows_of_reserved_packages(tmp_path: Path) -> None:
    _v3_dir(tmp_path)
    v2 = []
    for i, source in enumerate(("postgresql-doc-15 15.8", "zsh-doc 5.9")):
        text = f"a manual page {i}"
        v2.append({"id": f"manual:{source.split()[0]}:p{i}#0", "kind": "manual",
                   "source": source, "licence": "MIT", "excerpt": text,
                   "excerpt_sha256": hashlib.sha256(text.encode()).hexdigest()})
    (tmp_path / "v2" / "batches" / "batch_01.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in v2))
    (tmp_path / "v2" / "labels").mkdir()
    (tmp_path / "v2" / "labels" / "batch_01.jsonl").write_text(
        "".join(json.dumps(_label(r, annotator="a1")) + "\n" for r in v2))
    assert merge_seed.main(["--dir", str(tmp_path), "--version", "2"]) == 0
    assert pq.read_table(tmp_path / "prrc_seed_v2.parquet").num_rows == 22   # v2 as it was
    assert merge_seed.main(["--dir", str(tmp_path)]) == 0
    ids = pq.read_table(tmp_path / "prrc_seed_v3.parquet").column("id").to_pylist()
    assert "manual:zsh-doc:p1#0" in ids and not any("postgresql" in i for i in ids)


def test_v3_refuses_a_copy_of_a_missing_original(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    rows = _v3_dir(tmp_path)
    rows = [r for r in rows if r["id"] != "news:pkg:s3"]
    (tmp_path / "v3" / "batches" / "batch_01.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows))
    assert merge_seed.main(["--dir", str(tmp_path)]) == 2
    assert "parent_id 'news:pkg:s3' is not an original" in capsys.readouterr().err
