"""Exact and near duplicates across the shards of a run, and selection dropping them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rich.console import Console

from metamix.config import load_config
from metamix.pipeline.dedup import exact_key
from metamix.pipeline.minhash import (
    EMPTY,
    MinHasher,
    lsh_clusters,
    lsh_params,
    optimal_bands,
)
from metamix.pipeline.runner import run_score
from metamix.pipeline.selection import SelectConfig, run_selection
from tests.conftest import write_config, write_jsonl

QUIET = Console(quiet=True)
WORDS = ("river", "stone", "lantern", "quiet", "harbor", "maple", "signal", "copper",
         "meadow", "violet", "engine", "thunder", "pocket", "silver", "garden", "window",
         "candle", "marble", "falcon", "ribbon", "orchard", "velvet", "canyon", "beacon",
         "saddle", "willow", "timber", "crystal", "summit", "lagoon", "ember", "basket")


def _doc(seed: int, n_words: int = 120) -> str:
    rng = np.random.default_rng(seed)
    return " ".join(rng.choice(WORDS, n_words))


def _edit(text: str, n_changes: int) -> str:
    words = text.split()
    for i in range(n_changes):
        words[7 * i + 3] = f"changed{i}"
    return " ".join(words)


def test_lsh_params_find_pairs_at_the_threshold_and_verify_two_errors_below() -> None:
    bands, rows, bar = lsh_params(0.8, 128)
    assert (bands, rows) == (21, 6)        # 1 - (1 - 0.8^6)^21 = 0.998; 7 rows: 0.986
    assert bar == pytest.approx(0.8 - 2 * (0.8 * 0.2 / 128) ** 0.5)


def test_optimal_bands_match_datasketch_and_use_at_most_num_perm() -> None:
    assert optimal_bands(0.8, 128) == (9, 13)       # datasketch's MinHashLSH(0.8, 128)
    for threshold in (0.5, 0.7, 0.9):
        bands, rows = optimal_bands(threshold, 64)
        assert bands * rows <= 64


def test_signatures_ignore_case_punctuation_and_spacing_and_follow_the_seed() -> None:
    text = _doc(1)
    variant = text.upper().replace(" ", " ,  ", 5)
    sig = MinHasher(num_perm=64, seed=7).signatures(pa.array([text, variant, "", None]))
    assert sig.dtype == np.uint32 and sig.shape == (4, 64)
    assert (sig[0] == sig[1]).all()
    assert (sig[2] == EMPTY).all() and (sig[3] == EMPTY).all()
    again = MinHasher(num_perm=64, seed=7).signatures(pa.array([text]))
    other = MinHasher(num_perm=64, seed=8).signatures(pa.array([text]))
    assert (again[0] == sig[0]).all() and not (other[0] == sig[0]).all()


def test_signature_agreement_estimates_jaccard() -> None:
    base = _doc(2, 400)
    edited = _edit(base, 10)           # each change breaks up to 5 of ~396 shingles
    sig = MinHasher(num_perm=256, seed=0).signatures(pa.array([base, edited, _doc(3, 400)]))
    a, b = (set(zip(*[t.lower().split()[i:] for i in range(5)], strict=False))
            for t in (base, edited))
    jaccard = len(a & b) / len(a | b)
    assert abs((sig[0] == sig[1]).mean() - jaccard) < 0.08
    assert (sig[0] == sig[2]).mean() < 0.05


def test_lsh_clusters_near_duplicates_and_leaves_empty_documents_alone() -> None:
    base = _doc(4, 300)
    # one changed word breaks at most 5 of 296 shingles: Jaccard >= 0.967, and the LSH
    # catches that with probability 1 - (1 - 0.967^13)^9 > 0.9999
    texts = [base, _doc(5, 300), _edit(base, 1), "", "", _doc(6, 300), _edit(base[:-1], 1)]
    sig = MinHasher(num_perm=128, seed=0).signatures(pa.array(texts))
    bands, rows, bar = lsh_params(0.8, 128)
    labels = lsh_clusters(sig, bands, rows, min_agreement=bar)
    assert labels.tolist() == [0, 1, 0, 3, 4, 5, 0]   # first member names the cluster


def test_exact_key_normalizes_case_unicode_and_whitespace() -> None:
    assert exact_key("Hello  World\n") == exact_key("hello world") == exact_key("ＨＥＬＬＯ world")
    assert exact_key("hello world") != exact_key("hello, world")


@pytest.fixture
def dup_run(tmp_path: Path) -> Path:
    """Two files: b.jsonl repeats a.jsonl's first document exactly (other case and spacing)
    and its second with one word changed; every other document is unique."""
    data = tmp_path / "data"
    data.mkdir()
    a = [_doc(10 + i, 300) for i in range(6)]
    b = [a[0].upper().replace(" ", "  "), _edit(a[1], 1), *[_doc(30 + i, 300) for i in range(4)]]
    write_jsonl(data / "a.jsonl", [{"id": f"a{i}", "text": t, "domain": "web"}
                                   for i, t in enumerate(a)])
    write_jsonl(data / "b.jsonl", [{"id": f"b{i}", "text": t, "domain": "web" if i % 2 else
                                    "books"} for i, t in enumerate(b)])
    return write_config(tmp_path / "c.yaml", input={"paths": [str(data)]},
                        score={"scorers": [{"name": "redpajama"}]})


def _dups(run_dir: Path) -> dict[str, dict]:
    rows = pa.concat_tables([pq.read_table(p) for p in sorted((run_dir / "dups").glob("*"))])
    return {r["id"]: r for r in rows.to_pylist()}


def test_duplicates_across_shards_keep_the_users_ids_and_selection_drops_them(
        dup_run: Path, tmp_path: Path) -> None:
    cfg = load_config(dup_run)
    reports = {r.stage: r for r in run_score(cfg, QUIET)}
    assert reports["dups"].totals.read == 12
    dups = _dups(cfg.run_dir)
    assert set(dups) == {f"a{i}" for i in range(6)} | {f"b{i}" for i in range(6)}
    assert dups["a0"] == {"id": "a0", "dup_exact_cluster": "a0", "dup_exact_keep": True,
                               "dup_near_cluster": "a0", "dup_near_keep": True}
    assert dups["b0"] == {"id": "b0", "dup_exact_cluster": "a0", "dup_exact_keep": False,
                          "dup_near_cluster": "a0", "dup_near_keep": False}
    assert dups["b1"] == {"id": "b1", "dup_exact_cluster": None, "dup_exact_keep": True,
                          "dup_near_cluster": "a1", "dup_near_keep": False}
    assert dups["a1"]["dup_near_cluster"] == "a1" and dups["a1"]["dup_near_keep"]
    summary = json.loads((cfg.run_dir / "_manifests" / "dups.json").read_text())
    assert summary["not_kept"] == {"exact": 1, "near": 1}      # b1: near only
    unique = [i for i in dups if i not in ("a0", "b0", "a1", "b1")]
    assert all(dups[i]["dup_exact_cluster"] is None and dups[i]["dup_near_cluster"] is None
               for i in unique)

    scored = sorted((cfg.run_dir / "scored").glob("*.parquet"))
    summary = run_selection(SelectConfig(weights={"rps_doc_word_count": 1.0}, fraction=1.0),
                            scored, cfg.run_dir, progress=False)
    kept = pa.concat_tables([pq.read_table(p) for p in (cfg.run_dir / "selected").glob("*")])
    assert sorted(kept.column("id").to_pylist()) == sorted(set(dups) - {"b0", "b1"})
    assert {"dup_exact_cluster", "dup_near_keep"} <= set(kept.column_names)
    written = json.loads((cfg.run_dir / "selection_summary.json").read_text())
    assert written["totals"]["dropped_docs"] == {"duplicate_exact": 1, "duplicate_near": 1}
    assert summary["totals"]["dropped_docs"] == written["totals"]["dropped_docs"]

    keep_all = SelectConfig(weights={"rps_doc_word_count": 1.0}, fraction=1.0,
                            drop_duplicates=False)
    run_selection(keep_all, scored, tmp_path / "all", progress=False)
    assert sum(pq.read_metadata(p).num_rows
               for p in (tmp_path / "all" / "selected").glob("*")) == 12


def test_dedup_pass_resumes_and_reruns_byte_identical(dup_run: Path) -> None:
    cfg = load_config(dup_run)
    run_score(cfg, QUIET)
    files = {p: p.read_bytes() for p in sorted((cfg.run_dir / "dups").glob("*"))}
    record = cfg.run_dir / "_manifests" / "dups.json"
    summary = record.read_bytes()
    again = {r.stage: r for r in run_score(cfg, QUIET)}
    assert again["dups"].skipped == again["dups"].shards == 2 and again["dups"].docs_processed == 0
    next(iter(files)).unlink()                      # a lost output is recomputed
    redone = {r.stage: r for r in run_score(cfg, QUIET)}
    assert redone["dups"].docs_processed == 12
    assert {p: p.read_bytes() for p in sorted((cfg.run_dir / "dups").glob("*"))} == files
    assert record.read_bytes() == summary
    changed = load_config(dup_run, {"dedup.threshold": 0.95})
    assert {r.stage: r for r in run_score(changed, QUIET)}["dups"].docs_processed == 12
    off = load_config(dup_run, {"dedup.exact": False, "dedup.near": False})
    assert "dups" not in {r.stage for r in run_score(off, QUIET)}
    assert not (cfg.run_dir / "dups").exists() and not record.exists()   # nothing stale
