"""Stage runner: resume, SIGKILL at any point then rerun → byte-identical outputs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from metamix.config import load_config
from metamix.pipeline.runner import run_score
from tests.conftest import PROSE, REPO, run_outputs, write_config, write_jsonl

QUIET = Console(quiet=True)
N_SHARDS = 12


def _corpus(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    for s in range(N_SHARDS):
        rows = [{"id": f"s{s}-{i}", "text": f"{PROSE} Item {i} of shard {s}.\n" * (1 + i % 5),
                 "domain": ["web", "books", "code"][s % 3]} for i in range(300)]
        rows.append(b"{broken")
        write_jsonl(data / f"shard{s:02d}.jsonl", rows)
    return data


def _config(tmp_path: Path, name: str) -> Path:
    return write_config(tmp_path / f"{name}.yaml", run=name,
                        input={"paths": [str(tmp_path / "data" / "*.jsonl")]},
                        score={"batch_size": 100})


def test_rerun_skips_completed_shards_and_redoes_changed_ones(tmp_path: Path) -> None:
    _corpus(tmp_path)
    cfg = load_config(_config(tmp_path, "r"))
    first = {r.stage: r for r in run_score(cfg, QUIET)}
    assert first["ingest"].skipped == 0
    assert first["ingest"].totals.read == N_SHARDS * 301
    assert dict(first["ingest"].totals.quarantined) == {"invalid_json": N_SHARDS}
    before = run_outputs(cfg.run_dir, skip_dirs=("logs",))
    again = {r.stage: r for r in run_score(cfg, QUIET)}
    assert again["ingest"].skipped == N_SHARDS and again["scored"].skipped == N_SHARDS
    assert run_outputs(cfg.run_dir, skip_dirs=("logs",)) == before
    # Touch one input: only its shard is redone, everything else is reused.
    write_jsonl(tmp_path / "data" / "shard03.jsonl", [{"id": "new", "text": PROSE,
                                                       "domain": "web"}])
    third = {r.stage: r for r in run_score(cfg, QUIET)}
    assert third["ingest"].skipped == N_SHARDS - 1
    # the tokenizer is trained on the corpus, so a changed corpus re-scores every shard
    assert third["scored"].totals.read == N_SHARDS * 300 - 299
    # A removed input leaves no stale shard behind.
    (tmp_path / "data" / "shard11.jsonl").unlink()
    run_score(cfg, QUIET)
    assert len(list((cfg.run_dir / "scored").glob("*.parquet"))) == N_SHARDS - 1
    assert len(list((cfg.run_dir / "quarantine").glob("ingest-*.parquet"))) == N_SHARDS - 2


def _records(run_dir: Path, stage: str) -> int:
    return len(list((run_dir / "_manifests" / stage).glob("part-*.json")))


@pytest.mark.parametrize("kill_stage", ["ingest", "scored"])
def test_sigkill_mid_stage_then_rerun_is_byte_identical(tmp_path: Path, kill_stage: str) -> None:
    _corpus(tmp_path)
    clean = load_config(_config(tmp_path, "clean"))
    run_score(clean, QUIET)
    expected = run_outputs(clean.run_dir, skip_dirs=("logs",))

    killed_cfg = _config(tmp_path, "killed")
    run_dir = tmp_path / "out" / "killed"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "metamix.cli", "score", "-c",
                             str(killed_cfg)], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _records(run_dir, kill_stage) < 2:
        assert proc.poll() is None, "run finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_at_kill = _records(run_dir, kill_stage)
    assert 0 < done_at_kill < N_SHARDS, "the kill must land mid-stage"

    resumed = {r.stage: r for r in run_score(load_config(killed_cfg), QUIET)}
    assert resumed[kill_stage].skipped >= done_at_kill
    assert run_outputs(run_dir, skip_dirs=("logs",)) == expected
