"""The staged dedup pass (signatures, pairs per partition, clusters, dups per shard) against
the in-memory algorithm it replaces, and its resume after a task fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rich.console import Console

from metamix.config import load_config
from metamix.pipeline import dedup_stages
from metamix.pipeline.dedup import cluster_columns, exact_key, representatives
from metamix.pipeline.minhash import MinHasher, lsh_clusters, lsh_params
from metamix.pipeline.runner import run_score
from tests.conftest import write_config, write_jsonl

QUIET = Console(quiet=True)
WORDS = ("river", "stone", "lantern", "quiet", "harbor", "maple", "signal", "copper",
         "meadow", "violet", "engine", "thunder", "pocket", "silver", "garden", "window",
         "candle", "marble", "falcon", "ribbon", "orchard", "velvet", "canyon", "beacon")


def _doc(seed: int, n_words: int = 200) -> str:
    return " ".join(np.random.default_rng(seed).choice(WORDS, n_words))


def _edit(text: str, n_changes: int) -> str:
    words = text.split()
    for i in range(n_changes):
        words[9 * i + 4] = f"changed{i}"
    return " ".join(words)


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """Three files with copies planted across them: b0 = a0 exactly (other case and
    spacing), b1 and c1 near a1 (one and two words changed), c0 = b3 exactly, c2 near b2,
    a7 and c7 exact copies without words, c8 alone without words; everything else unique."""
    a = [_doc(100 + i) for i in range(8)]
    a[7] = "* * *"
    b = [a[0].upper().replace(" ", "  "), _edit(a[1], 1), *[_doc(200 + i) for i in range(6)]]
    c = [b[3], _edit(a[1], 2), _edit(b[2], 1), *[_doc(300 + i) for i in range(4)], "*  *  *", "#"]
    data = tmp_path / "data"
    data.mkdir()
    for name, texts in (("a", a), ("b", b), ("c", c)):
        write_jsonl(data / f"{name}.jsonl", [{"id": f"{name}{i}", "text": t, "domain": "web"}
                                              for i, t in enumerate(texts)])
    return write_config(tmp_path / "c.yaml", input={"paths": [str(data)]},
                        score={"scorers": [{"name": "redpajama"}]},
                        dedup={"partitions": 3, "duckdb_memory_limit": "64MB"})


def _dups(run_dir: Path) -> pa.Table:
    return pa.concat_tables([pq.read_table(p) for p in sorted((run_dir / "dups").glob("*"))])


def _in_memory(run_dir: Path, exact: bool = True, near: bool = True) -> dict[str, list[Any]]:
    """The columns of the pass that held every signature in one process."""
    scored = pa.concat_tables([pq.read_table(p, columns=["id", "text"])
                               for p in sorted((run_dir / "scored").glob("*.parquet"))])
    ids = np.array(scored.column("id").to_pylist(), dtype=object)
    n = len(ids)
    columns: dict[str, list[Any]] = {"id": ids.tolist()}
    exact_rep = representatives([exact_key(t) for t in scored.column("text").to_pylist()])
    cluster, keep = cluster_columns(ids, exact_rep)
    columns["dup_exact_cluster"] = cluster.to_pylist() if exact else [None] * n
    columns["dup_exact_keep"] = keep.to_pylist() if exact else [True] * n
    sig = MinHasher(num_perm=128, ngram=5, seed=0).signatures(scored.column("text"))
    bands, rows, bar = lsh_params(0.8, 128)
    near_rep = lsh_clusters(sig, bands, rows, min_agreement=bar,
                            same_as=exact_rep if exact else None)
    cluster, keep = cluster_columns(ids, near_rep)
    columns["dup_near_cluster"] = cluster.to_pylist() if near else [None] * n
    columns["dup_near_keep"] = keep.to_pylist() if near else [True] * n
    return columns


def test_staged_pass_finds_the_planted_copies_as_the_in_memory_pass_does(
        planted: Path) -> None:
    cfg = load_config(planted)
    run_score(cfg, QUIET)
    table = _dups(cfg.run_dir)
    assert table.to_pydict() == _in_memory(cfg.run_dir)
    rows = {r["id"]: r for r in table.to_pylist()}
    not_kept = {i for i, r in rows.items() if not (r["dup_exact_keep"] and r["dup_near_keep"])}
    assert not_kept == {"b0", "b1", "c0", "c1", "c2", "c7"}
    assert [rows[i]["dup_exact_cluster"] for i in ("a0", "b0", "b3", "c0", "a7", "c7")] == [
        "a0", "a0", "b3", "b3", "a7", "a7"]
    assert [rows[i]["dup_near_cluster"] for i in ("a1", "b1", "c1", "b2", "c2")] == [
        "a1", "a1", "a1", "b2", "b2"]
    assert rows["a7"]["dup_near_cluster"] == "a7"   # wordless, joined by the exact link
    assert rows["c8"]["dup_near_cluster"] is None   # no words, its own exact key
    assert len(rows) == 25
    assert not (cfg.run_dir / "_dedup").exists()    # the work folder is removed


@pytest.mark.parametrize("section", [{"exact": False}, {"near": False}])
def test_staged_pass_with_one_kind_of_duplicate_matches_in_memory(
        planted: Path, section: dict[str, bool]) -> None:
    cfg = load_config(planted, {f"dedup.{k}": v for k, v in section.items()})
    run_score(cfg, QUIET)
    assert _dups(cfg.run_dir).to_pydict() == _in_memory(cfg.run_dir, **section)


def test_partition_count_and_memory_limit_leave_the_bytes_alone(planted: Path) -> None:
    one = load_config(planted, {"dedup.partitions": 1, "run": "one"})
    many = load_config(planted, {"dedup.partitions": 7, "dedup.duckdb_memory_limit": "1GB",
                                 "run": "many"})
    run_score(one, QUIET)
    run_score(many, QUIET)
    files = sorted(p.name for p in (one.run_dir / "dups").glob("*"))
    assert len(files) == 3
    assert all((one.run_dir / "dups" / f).read_bytes() == (many.run_dir / "dups" / f)
               .read_bytes() for f in files)


def test_a_failed_partition_resumes_without_redoing_finished_tasks(
        planted: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clean = load_config(planted, {"run": "clean"})
    run_score(clean, QUIET)
    cfg = load_config(planted, {"dedup.keep_work_files": True})
    calls: dict[str, list[str]] = {"signatures": [], "pairs": []}
    sign, pair = dedup_stages.signature_shard, dedup_stages.pair_partition

    def counted_sign(task: dedup_stages.DedupTask) -> Any:
        calls["signatures"].append(task.shard)
        return sign(task)

    def failing_pair(task: dedup_stages.DedupTask) -> Any:
        calls["pairs"].append(task.shard)
        if task.partition == 2:
            raise RuntimeError("worker lost")
        return pair(task)

    monkeypatch.setattr(dedup_stages, "signature_shard", counted_sign)
    monkeypatch.setattr(dedup_stages, "pair_partition", failing_pair)
    with pytest.raises(RuntimeError, match="worker lost"):
        run_score(cfg, QUIET)
    assert not (cfg.run_dir / "dups").exists()
    assert calls == {"signatures": ["part-00000", "part-00001", "part-00002"],
                     "pairs": ["p-0000", "p-0001", "p-0002"]}
    monkeypatch.setattr(dedup_stages, "pair_partition", lambda t: (
        calls["pairs"].append(t.shard), pair(t))[1])
    calls = {"signatures": [], "pairs": []}
    monkeypatch.setattr(dedup_stages, "signature_shard", counted_sign)
    run_score(cfg, QUIET)
    assert calls == {"signatures": [], "pairs": ["p-0002"]}     # the rest resumed
    names = sorted(p.name for p in (clean.run_dir / "dups").glob("*"))
    assert [(cfg.run_dir / "dups" / n).read_bytes() for n in names] == [
        (clean.run_dir / "dups" / n).read_bytes() for n in names]
    assert (cfg.run_dir / "_dedup" / "clusters.parquet").is_file()   # kept as asked
