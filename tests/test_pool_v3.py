"""bench/annotation: the v3 pool verifier's checks and the seeded corruptions."""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent
TEXT = ("The council met on Tuesday to discuss the new library. Residents said the old "
        "building had been closed for two years, and many children now travel to the next "
        "town to borrow books. The mayor promised a decision before the summer.")


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / "annotation"
                                                  / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


verify = _load("verify_pool_v3")
corrupt_mod = _load("pool_v3_corrupt")


def _record(rid: str, kind: str, text: str, parent: str | None = None,
            corruption: str | None = None, source: str = "pkg 1.0 (pypi)") -> dict:
    return {"id": rid, "kind": kind, "source": source, "licence": "MIT", "excerpt": text,
            "excerpt_sha256": hashlib.sha256(text.encode()).hexdigest(), "parent_id": parent,
            "corruption": corruption}


def _good() -> dict[str, list[dict]]:
    return {"batch_01.jsonl": [
        _record("news:a#0", "news", TEXT),
        _record("news:a#0~case-fold-1", "news", TEXT.lower(), "news:a#0", "case-fold:1"),
        _record("forum:b#0", "forum", "u/someone · 3 points\nDoes anyone know a fix for this?"),
    ]}


def test_a_clean_pool_has_no_problems() -> None:
    assert verify.check_records(_good(), ("pysrt",), 2, 1) == []


def test_each_broken_rule_is_named() -> None:
    batches = _good()
    rows = batches["batch_01.jsonl"]
    rows[0]["excerpt_sha256"] = "0" * 64                       # hash mismatch
    rows[1]["parent_id"] = "news:missing#0"                    # parent not in the batch
    rows.append(_record("forum:c#0", "forum", "x" * 2001))     # over the cap
    rows.append(_record("forum:d#0", "forum", "a real-looking post about pysrt usage here",
                        source="pysrt 1.1.2 (pypi)"))          # reserved source
    rows.append(_record("forum:e#0", "forum", "u/someone · 3 points\nDoes anyone know a fix "
                        "for this?"))                          # duplicate excerpt
    rows.append(_record("news:f#0", "news", TEXT + " More.", None, "ocr-noise:1"))
    problems = "\n".join(verify.check_records(batches, ("pysrt",), 2, 1))
    assert "batch_01.jsonl:1: excerpt_sha256 does not match" in problems
    assert "batch_01.jsonl:2: parent 'news:missing#0' is not in batch_01.jsonl" in problems
    assert "batch_01.jsonl:4: not a raters' excerpt" in problems
    assert "batch_01.jsonl:5: source 'pysrt 1.1.2 (pypi)' is reserved ('pysrt')" in problems
    assert "1 repeated excerpt_sha256s" in problems
    assert "batch_01.jsonl:7: parent_id and corruption must be both null" in problems


def test_a_kind_missing_from_a_batch_and_too_few_kinds_are_reported() -> None:
    batches = _good()
    batches["batch_02.jsonl"] = [_record("news:z#0", "news", TEXT + " Again.")]
    problems = verify.check_records(batches, (), 3, 1)
    assert "batch_02.jsonl: lacks kind(s) ['forum']" in problems
    assert "only 2 kinds, 3 required" in problems


def _changed(a: str, b: str) -> float:
    return 1 - difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def test_corruptions_are_seeded_and_ocr_levels_grow_harsher() -> None:
    corrupt = corrupt_mod.corrupt
    assert corrupt(TEXT, "ocr-noise", 2, 7) == corrupt(TEXT, "ocr-noise", 2, 7)
    assert corrupt(TEXT, "ocr-noise", 2, 7) != corrupt(TEXT, "ocr-noise", 2, 8)
    damage = [_changed(TEXT, corrupt(TEXT, "ocr-noise", level, 11)) for level in (1, 2, 3)]
    assert 0 < damage[0] < damage[1] < damage[2]
    assert corrupt(TEXT, "case-fold", 1, 0) == TEXT.lower()
    assert "," not in corrupt(TEXT, "strip-punctuation", 1, 0)
    assert corrupt(TEXT, "tokenised-dump", 1, 0).splitlines()[0].split(" ", 1)[1] == \
        "the council met on tuesday to discuss the new library ."
    wrapped = corrupt(TEXT, "boilerplate-wrap", 1, 3)
    assert TEXT in wrapped and len(wrapped) > len(TEXT) + 100


def test_a_family_plan_has_one_ocr_level_and_distinct_copies() -> None:
    for seed in range(50):
        plan = corrupt_mod.family_plan(seed, 3)
        assert plan[0][0] == "ocr-noise" and len(set(plan)) == 3
        others = [t for t, _ in plan[1:] if t != "ocr-noise"]
        assert len(others) == len(set(others))


def test_the_committed_pool_passes_the_record_checks() -> None:
    folder = REPO / "data" / "annotations" / "v3" / "batches"
    batches = {p.name: verify.read(p) for p in sorted(folder.glob("batch_*.jsonl"))}
    reserved = verify.reserved_names(REPO / "docs" / "reserved-for-evaluation.txt")
    assert len(batches) == 14 and all(len(rows) == 250 for rows in batches.values())
    assert verify.check_records(batches, reserved, 12, 20) == []
    copies = [r for rows in batches.values() for r in rows if r["corruption"]]
    assert len(copies) == 1218
