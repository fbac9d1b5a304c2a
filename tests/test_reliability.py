"""Reruns are byte-identical, one command per run folder, no temp file outlives a kill, and
file-system problems are one clear line."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from metamix.base.errors import UserError
from metamix.base.runlock import remove_stale_temps, run_lock
from tests.conftest import REPO


def chain_config(tmp_path: Path, sample_slice: Path) -> Path:
    """A small score -> metarater -> mix -> select chain (one worker: no pool start-up)."""
    config = {
        "run": "chain", "out_dir": "out", "seed": 0, "workers": 1, "progress": False,
        "input": {"paths": [str(sample_slice / "*.parquet")]},
        "validation": {"paths": [str(REPO / "data" / "sample" / "validation" / "*.parquet")]},
        "tokenizer": {"vocab_size": 1000, "sample_docs": 400},
        "score": {"scorers": [{"name": "redpajama"}, {"name": "fineweb"}, {"name": "c4"}]},
        "metarater": {
            "targets": [{"name": "manuals", "kind": "text", "input": {
                "paths": [str(REPO / "data" / "targets" / "gnu_manuals.parquet")]}},
                        {"name": "validation", "kind": "validation", "weight": 0}],
            "k": 8, "folds": 2, "random_draws": 2, "baselines": False,
            "n_search_samples": 2000, "top_k": 8, "fraction": 0.3, "share_tolerance": 0.1},
        "mix": {"n_runs": 6, "bo_rounds": 1, "bo_batch": 2, "proxy_tokens": 20000,
                "folds": 2, "n_candidates": 2000, "surrogates": ["linear", "loglinear"]},
        "select": {"weights_file": "out/chain/metarater/weights.json", "mode": "token_budget",
                   "mixture_file": "out/chain/mixture/weights.json"},
    }
    path = tmp_path / "chain.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def metamix(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "metamix.cli", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=900)


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file of a run folder except logs/ (timings live there)."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()
            and p.relative_to(root).parts[0] != "logs"}   # .lock included: empty after a run


def test_two_clean_runs_of_a_full_chain_write_identical_files(tmp_path: Path,
                                                               sample_slice: Path) -> None:
    config = chain_config(tmp_path, sample_slice)
    first = metamix("run", "-c", str(config), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    run_dir = tmp_path / "out" / "chain"
    digests = tree_digest(run_dir)
    assert {"score_summary.json", "metarater/summary.json", "metarater/runs.parquet",
            "metarater/weights.json", "mixture/weights.json", "mixture/weights.yaml",
            "mix/runs.parquet", "selection_summary.json"} <= set(digests)
    assert any(name.startswith("selected/") for name in digests)
    assert (run_dir / "logs" / "score.json").is_file()
    assert (run_dir / "logs" / "mix.json").is_file()  # the timings the mixture files lost
    shutil.rmtree(tmp_path / "out")
    second = metamix("run", "-c", str(config), cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert tree_digest(run_dir) == digests


def test_a_second_command_on_the_same_run_folder_stops_with_the_holders_pid(
        tmp_path: Path) -> None:
    run_dir = tmp_path / "out" / "r"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from metamix.base.runlock import run_lock\n"
         f"with run_lock(Path({str(run_dir)!r})):\n"
         "    print('locked', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(UserError, match=rf"another metamix command \(PID {holder.pid}\)"), \
                run_lock(run_dir):
            pass
    finally:
        holder.kill()
        holder.wait()
    # the kernel released the dead holder's lock: the next command takes it over
    with run_lock(run_dir):
        assert (run_dir / ".lock").read_text().strip() == str(os.getpid())


def test_stale_temporary_files_are_removed_wherever_they_are(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = [tmp_path / "_cache" / f".tokenizer-abc.json.tmp-{dead.pid}",
             tmp_path / "selected" / f".books.parquet.tmp-{dead.pid}",
             tmp_path / "metarater" / f".runs.parquet.tmp-{dead.pid}",
             tmp_path / f".score_summary.json.tmp-{dead.pid}"]
    spill = tmp_path / f".selection-spill-{dead.pid}"
    live = tmp_path / "mix" / f".runs.parquet.tmp-{os.getppid()}"
    for path in [*stale, live]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"partial")
    (spill / "x").mkdir(parents=True)
    removed = remove_stale_temps(tmp_path)
    assert sorted(removed) == sorted([*stale, spill])
    assert live.exists()              # its writer is alive: only a locked run may remove it
    assert remove_stale_temps(tmp_path, only_dead=False) == [live]


def test_unwritable_output_and_full_disk_are_one_line_errors(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture
                                                             ) -> None:
    from metamix.cli import main

    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"run": "r", "out_dir": "/proc/metamix-test",
                                      "input": {"paths": ["x.jsonl"]}}))
    assert main(["score", "-c", str(config)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: /proc/metamix-test: No such file or directory"]

    import metamix.pipeline.runner as runner

    def full(*_: object, **__: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "out" / "x"))

    monkeypatch.setattr(runner, "run_score", full)
    config.write_text(yaml.safe_dump({"run": "r", "out_dir": str(tmp_path / "out"),
                                      "input": {"paths": ["x.jsonl"]}}))
    assert main(["score", "-c", str(config)]) == 2
    err = capsys.readouterr().err
    assert "No space left on device; free some space and rerun to resume" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(("text", "message"), [
    ("run: a\nseed: 1\nrun: b\n", r"c\.yaml:3: key 'run' given twice \(lines 1 and 3\)"),
    ("input:\n  paths: [x]\n  paths: [y]\n", r"c\.yaml:3: key 'paths' given twice"),
    ("run: a\n  bad: [\n", r"c\.yaml:2: mapping values are not allowed here"),
    ("run: ..\ninput: {paths: [x]}\n", r"c\.yaml: run: .*one folder name of at most 96"),
    ("run: " + "a" * 300 + "\ninput: {paths: [x]}\n", r"c\.yaml: run: .*at most 96 char"),
])
def test_config_file_problems_name_file_and_line(tmp_path: Path, text: str,
                                                 message: str) -> None:
    from metamix.config import load_config

    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(UserError, match=message):
        load_config(tmp_path / "c.yaml")


def test_killed_chain_leaves_nothing_a_rerun_does_not_clean(tmp_path: Path,
                                                            sample_slice: Path) -> None:
    """A SIGKILL in the middle of metarater: the rerun resumes, removes the killed run's
    temporary files and ends with the same files as a clean run."""
    config = chain_config(tmp_path, sample_slice)
    clean = metamix("run", "-c", str(config), "--until", "metarater", cwd=tmp_path)
    assert clean.returncode == 0, clean.stderr
    run_dir = tmp_path / "out" / "chain"
    expected = tree_digest(run_dir)
    shutil.rmtree(tmp_path / "out")
    counter = tmp_path / "points.log"
    env = {**os.environ, "METAMIX_FAULT_COUNTER": str(counter)}
    counted = subprocess.run([sys.executable, "-m", "metamix.cli", "run", "-c", str(config),
                              "--until", "metarater"], cwd=tmp_path, env=env, timeout=900,
                             capture_output=True, text=True)
    assert counted.returncode == 0, counted.stderr
    points = counter.read_text().splitlines()
    target = next(i for i, p in enumerate(points) if "metarater/runs.parquet" in p
                  and p.startswith("before"))
    shutil.rmtree(tmp_path / "out")
    counter.unlink()
    killed = subprocess.run([sys.executable, "-m", "metamix.cli", "run", "-c", str(config),
                             "--until", "metarater"], cwd=tmp_path, timeout=900,
                            env={**env, "METAMIX_FAULT_KILL_AT": str(target)},
                            start_new_session=True, capture_output=True, text=True)
    assert killed.returncode == -9
    assert list((tmp_path / "out").rglob(".*.tmp-*"))     # the kill left a temp file
    time.sleep(0.1)
    rerun = metamix("run", "-c", str(config), "--until", "metarater", cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert not list((tmp_path / "out").rglob(".*.tmp-*"))
    assert tree_digest(run_dir) == expected
