"""Sweep runner: runs table, one retry per failure, and resume after SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from rich.console import Console

from metamix.base.atomic import read_parquet_whole
from metamix.mixtures.proxies import TrainingData, ValidationSet, build_token_cache
from metamix.mixtures.proxies.synthetic import corpus_texts, make_corpus, make_tokenizer
from metamix.mixtures.sweep import ProxyTask, RunsTable, run_sweep

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def caches(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("sweep-corpus")
    paths = make_corpus(root, n_docs=120, n_valid=10)
    tok = make_tokenizer(root / "tokenizer.json", corpus_texts(paths["scored"]))
    return {"train": str(build_token_cache(paths["scored"], tok, root / "cache")),
            "valid": str(build_token_cache(paths["validation"], tok, root / "cache"))}


# Logs every invocation, fails (exit 1) while a "fail-<run>" marker file exists; a marker
# reading "once" is deleted on use, so the retry succeeds; "garbage" writes unparsable JSON.
TRAINER = """
import json, os, sys, time
m = json.load(open(sys.argv[1])); run = os.path.basename(os.path.dirname(m['output']))
log = sys.argv[2]
open(log + '/calls.log', 'a').write(run + '\\n')
time.sleep(float(sys.argv[3]))
marker = os.path.join(log, 'fail-' + run)
if os.path.exists(marker) and open(marker).read() == 'garbage':
    open(m['output'], 'w').write('{"losses": oops')
    sys.exit(0)
if os.path.exists(marker):
    if open(marker).read() == 'once':
        os.remove(marker)
    sys.exit('boom in ' + run)
losses = {d: 1.0 + int(run.split('-')[1]) / 10 for d in m['validation_domains']}
json.dump({'losses': losses, 'mean_loss': sum(losses.values()) / len(losses)},
          open(m['output'], 'w'))
"""


def make_tasks(caches: dict[str, str], tmp: Path, n: int, sleep: float) -> list[ProxyTask]:
    (tmp / "trainer.py").write_text(TRAINER)
    command = [sys.executable, str(tmp / "trainer.py"), "{manifest}", str(tmp), str(sleep)]
    return [ProxyTask(run_id=f"run-{i:02d}", kind="test", weights={"a": 1.0},
                      trainer="external", trainer_params={"command": command},
                      data=TrainingData(caches["train"], token_budget=300, seed=i),
                      validation=ValidationSet(caches["valid"]), selection_docs=10,
                      selection_tokens=300, work_dir=str(tmp / "work"), sweep_key="k")
            for i in range(n)]


def calls(tmp: Path) -> list[str]:
    path = tmp / "calls.log"
    return path.read_text().split() if path.exists() else []


def test_failures_are_recorded_and_retried_once(caches: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "fail-run-01").write_text("always")
    (tmp_path / "fail-run-02").write_text("once")
    (tmp_path / "fail-run-03").write_text("garbage")
    table = RunsTable(tmp_path / "runs.parquet", "k")
    final = run_sweep(make_tasks(caches, tmp_path, 4, 0), table, workers=1,
                      console=Console(quiet=True), show_progress=False)
    assert [final[f"run-0{i}"]["status"] for i in range(4)] == ["ok", "failed", "ok", "failed"]
    assert "status 1: boom in run-01" in final["run-01"]["error"]
    assert "not valid JSON" in final["run-03"]["error"]
    rows = pq.read_table(tmp_path / "runs.parquet").to_pylist()
    attempts = [(r["run_id"], r["attempt"], r["status"]) for r in rows]
    assert attempts == [("run-00", 1, "ok"), ("run-01", 1, "failed"), ("run-01", 2, "failed"),
                        ("run-02", 1, "failed"), ("run-02", 2, "ok"),
                        ("run-03", 1, "failed"), ("run-03", 2, "failed")]
    assert rows[0]["loss_web"] == 1.0 and rows[4]["loss_code"] == pytest.approx(1.2)
    # A rerun skips the ok runs and tries the failed one again (attempt 3).
    (tmp_path / "fail-run-03").unlink()
    again = run_sweep(make_tasks(caches, tmp_path, 4, 0), RunsTable(tmp_path / "runs.parquet",
                      "k"), workers=2, console=Console(quiet=True), show_progress=False)
    assert calls(tmp_path).count("run-00") == 1 and calls(tmp_path).count("run-01") == 4
    assert again["run-01"]["attempt"] == 4 and again["run-00"]["status"] == "ok"
    assert again["run-03"]["status"] == "ok" and again["run-03"]["attempt"] == 3


def test_changed_sweep_key_starts_a_fresh_table(caches: dict[str, str], tmp_path: Path) -> None:
    run_sweep(make_tasks(caches, tmp_path, 1, 0), RunsTable(tmp_path / "runs.parquet", "k"),
              workers=1, console=Console(quiet=True), show_progress=False)
    assert RunsTable(tmp_path / "runs.parquet", "other").rows == []
    assert (tmp_path / "runs-k.parquet").is_file()


SWEEP_SCRIPT = """
import json, sys
sys.path.insert(0, {repo!r})
from rich.console import Console
from tests.test_sweep import make_tasks
from metamix.mixtures.sweep import RunsTable, run_sweep
from pathlib import Path
caches, tmp = json.loads(sys.argv[1]), Path(sys.argv[2])
run_sweep(make_tasks(caches, tmp, 8, 0.4), RunsTable(tmp / 'runs.parquet', 'k'), workers=1,
          console=Console(quiet=True), show_progress=False)
"""


def test_killed_sweep_resumes_and_skips_finished_runs(caches: dict[str, str],
                                                      tmp_path: Path) -> None:
    script = tmp_path / "sweep.py"
    script.write_text(SWEEP_SCRIPT.format(repo=str(REPO)))
    proc = subprocess.Popen([sys.executable, str(script), json.dumps(caches), str(tmp_path)],
                            cwd=REPO, start_new_session=True)
    deadline = time.monotonic() + 60
    table = tmp_path / "runs.parquet"
    while time.monotonic() < deadline:
        if table.is_file() and read_parquet_whole(table).num_rows >= 3:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {r["run_id"] for r in pq.read_table(table).to_pylist()}
    assert 3 <= len(finished) < 8
    final = run_sweep(make_tasks(caches, tmp_path, 8, 0), RunsTable(table, "k"), workers=1,
                      console=Console(quiet=True), show_progress=False)
    assert all(r["status"] == "ok" for r in final.values()) and len(final) == 8
    log = calls(tmp_path)
    for run_id in finished:
        assert log.count(run_id) == 1           # not re-run after the restart
    assert sorted(set(log)) == [f"run-{i:02d}" for i in range(8)]
    assert len(pq.read_table(table).to_pylist()) == 8
