"""Workers live no longer than their command, count as holders of its run lock, and leave
Ctrl-C's one message to it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from metamix.base.errors import UserError
from metamix.base.runlock import LOCK_ENV, run_lock
from tests.conftest import SAMPLE


def _state(pid: int) -> str | None:
    """The process's state letter, or None once it is gone (a zombie counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None
    return None if state in ("Z", "X") else state


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _start_score(tmp_path: Path) -> subprocess.Popen[bytes]:
    """``metamix score`` of the bundled corpus on 2 workers, in its own process group."""
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({
        "run": "k", "out_dir": str(tmp_path / "out"), "workers": 2, "progress": False,
        "input": {"paths": [str(SAMPLE / "train" / "*.parquet")]},
        "tokenizer": {"vocab_size": 300, "sample_docs": 200},
        "score": {"scorers": [{"name": "redpajama"}, {"name": "gopher_quality"}]}}))
    return subprocess.Popen([sys.executable, "-m", "metamix.cli", "score", "-c", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)


def _wait_for(cmd: subprocess.Popen[bytes], workers: bool) -> None:
    """Until the forkserver is up (and, with ``workers``, a worker forked from it runs)."""
    deadline = time.monotonic() + 120
    while len(kids := _descendants(cmd.pid)) < 2 or (
            workers and not any(_descendants(k) for k in kids)):
        assert cmd.poll() is None and time.monotonic() < deadline, "no pool started"
        time.sleep(0.05)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG: Linux")
def test_kill_9_of_the_command_takes_its_forkserver_and_workers_with_it(tmp_path: Path) -> None:
    cmd = _start_score(tmp_path)
    kids: list[int] = []
    try:
        _wait_for(cmd, workers=True)
        time.sleep(1)
        kids = _descendants(cmd.pid)
        os.kill(cmd.pid, signal.SIGKILL)
        cmd.communicate(timeout=10)   # no survivor holds the caller's stderr pipe open
        deadline = time.monotonic() + 5
        while (alive := [k for k in kids if _state(k) is not None]) and \
                time.monotonic() < deadline:
            time.sleep(0.1)
        assert alive == []
    finally:
        for pid in [cmd.pid, *_descendants(cmd.pid), *kids]:   # on failure: no orphans
            if _state(pid) is not None:
                os.kill(pid, signal.SIGKILL)
        cmd.wait()


@pytest.mark.parametrize("moment", ["forkserver_preloading", "workers_running"])
def test_ctrl_c_prints_only_its_message(tmp_path: Path, moment: str) -> None:
    cmd = _start_score(tmp_path)
    try:
        _wait_for(cmd, workers=moment == "workers_running")
        time.sleep(0.5)
        os.killpg(cmd.pid, signal.SIGINT)   # a terminal's Ctrl-C reaches the whole group
        _, stderr = cmd.communicate(timeout=60)
    finally:
        if cmd.poll() is None:
            os.killpg(cmd.pid, signal.SIGKILL)
            cmd.wait()
    assert cmd.returncode == 130
    assert stderr.decode().strip() == "interrupted; rerun the same command to resume"


def test_a_live_worker_of_a_killed_command_keeps_the_run_folder_locked(
        tmp_path: Path) -> None:
    run_dir = tmp_path / "out" / "r"
    (run_dir).mkdir(parents=True)
    (run_dir / ".lock").write_text("4242\n")   # what a SIGKILLed command leaves
    worker = subprocess.Popen(
        [sys.executable, "-c", "from metamix.base.runlock import join_run_lock; "
         "join_run_lock(); print('joined', flush=True); import time; time.sleep(60)"],
        env={**os.environ, LOCK_ENV: str(run_dir / ".lock")}, stdout=subprocess.PIPE,
        text=True)
    try:
        assert worker.stdout is not None and worker.stdout.readline().strip() == "joined"
        with pytest.raises(UserError, match=r"worker processes of an earlier metamix command "
                                            r"\(PID 4242\) are still writing"), \
                run_lock(run_dir):
            pass
    finally:
        worker.kill()
        worker.wait()
    with run_lock(run_dir):
        assert (run_dir / ".lock").read_text() == f"{os.getpid()}\n"
        assert os.environ[LOCK_ENV] == str(run_dir / ".lock")
    assert (run_dir / ".lock").read_text() == ""   # a clean exit leaves no PID
    assert LOCK_ENV not in os.environ


def test_a_temporary_file_of_a_killed_unreaped_writer_is_removed(tmp_path: Path) -> None:
    """A just-SIGKILLed worker is a zombie until reaped: its temporary file in the shared
    cache is removed by the rerun all the same (the fault-injection bench found it left)."""
    from metamix.base.runlock import remove_stale_temps

    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        os.kill(writer.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{writer.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] \
                != "Z" and time.monotonic() < deadline:   # killed, not reaped (no wait())
            time.sleep(0.01)
        temp = tmp_path / f".tokenizer-x.json.check.tmp-{writer.pid}"
        temp.write_text("half")
        live = tmp_path / f".other.tmp-{os.getpid() + 0}"   # this process: kept
        live.write_text("mine")
        assert remove_stale_temps(tmp_path) == [temp]
        assert not temp.exists() and live.exists()
    finally:
        writer.wait()
