"""One command at a time per run folder, and no temporary file left behind by a killed one.

Two commands writing the same ``out/<run>/`` would delete each other's temporary files and
interleave manifests. ``run_lock`` takes an exclusive ``flock`` on ``out/<run>/.lock`` and
records the holder's PID there while it runs (a clean exit empties the file again, so two
clean runs leave identical folders); the kernel drops the lock when its process dies, so a
lock left by a killed run is taken over by the next one without any cleanup.

Worker processes count as holders: each takes a shared record lock on one byte of the same
file (``join_run_lock``, from the path the command puts in ``METAMIX_RUN_LOCK``), which the
kernel drops when the worker dies, and a new command refuses the folder while any is held.
Workers also die with their parent (``die_with_parent``), so after a ``kill -9`` of the
command (what the OOM killer does) none works on, nor holds the caller's stderr open.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from metamix.base.errors import UserError
from metamix.base.hashing import json_hash
from metamix.base.storage import is_remote, store_endpoint

LOCK_NAME = ".lock"
LOCK_ENV = "METAMIX_RUN_LOCK"
#: The byte of the lock file whose shared record locks are the workers' (record locks and
#: ``flock`` are independent on Linux; the file's content is never that long).
_WORKERS_BYTE = 1 << 20
_PR_SET_PDEATHSIG = 1
_worker_lock_fd: int | None = None


def _lock_file(run_dir: Path) -> Path:
    """``<run>/.lock``; for a run folder on an object store (which has no locks), a local
    file named after its URI and the store's endpoint (the same bucket and path on two
    endpoints are two run folders): it keeps two commands on this machine apart, not two
    machines."""
    if not is_remote(run_dir):
        run_dir.mkdir(parents=True, exist_ok=True)
        return run_dir / LOCK_NAME
    folder = Path(tempfile.gettempdir()) / "metamix-locks"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{json_hash([str(run_dir), store_endpoint(run_dir)])}.lock"


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run folder's lock for the block, or stop with the holder's PID."""
    path = _lock_file(run_dir)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise UserError(f"{run_dir}: another metamix command (PID {holder}) is writing "
                            "this run folder; wait for it or stop it first") from None
        _refuse_live_workers(fd, run_dir)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        saved = os.environ.get(LOCK_ENV)
        os.environ[LOCK_ENV] = str(path)
        try:
            yield
        finally:
            if saved is None:
                os.environ.pop(LOCK_ENV, None)
            else:
                os.environ[LOCK_ENV] = saved
        os.ftruncate(fd, 0)   # a clean exit leaves no PID (a killed command leaves its own)
    finally:
        os.close(fd)   # closing releases the lock


def _refuse_live_workers(fd: int, run_dir: Path) -> None:
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, _WORKERS_BYTE)
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EAGAIN):
            raise
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        raise UserError(f"{run_dir}: worker processes of an earlier metamix command (PID "
                        f"{holder}) are still writing this run folder; wait for them to "
                        "exit or stop them first") from None
    fcntl.lockf(fd, fcntl.LOCK_UN, 1, _WORKERS_BYTE)


def join_run_lock() -> None:
    """In a worker process: hold a share of the command's run lock for this process's life
    (a no-op outside a command that holds one, e.g. on a Ray worker)."""
    global _worker_lock_fd
    path = os.environ.get(LOCK_ENV)
    if not path or _worker_lock_fd is not None:
        return
    fd = os.open(path, os.O_RDWR)
    fcntl.lockf(fd, fcntl.LOCK_SH, 1, _WORKERS_BYTE)
    _worker_lock_fd = fd   # kept open: closing any descriptor of the file drops the lock


def exit_on_interrupt() -> None:
    """In a worker process: Ctrl-C (SIGINT reaches the whole process group) ends this
    process at once and silently; the command prints the one message and a rerun resumes
    (what the worker was writing is a temporary file the next command removes)."""
    def _exit(*_: object) -> None:
        from multiprocessing import util

        # multiprocessing's own exit steps, as when a worker returns: its finalizers give
        # back the semaphores it registered, else the resource tracker warns about them.
        util._exit_function()
        os._exit(130)

    signal.signal(signal.SIGINT, _exit)


def die_with_parent() -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux
    ``PR_SET_PDEATHSIG``); exit now if the parent is already gone. Elsewhere a no-op.
    (The signal follows the parent *thread* that started this process: metamix starts its
    pools from the main thread.)"""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:   # it died before the call took effect
        os._exit(1)


def _pid_alive(pid: int) -> bool:
    """Whether the process runs; a zombie (killed, not yet reaped: the workers of a command
    just SIGKILLed, while the rerun starts) writes no more and counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True   # no /proc (not Linux): alive as far as we can tell
    return state not in ("Z", "X")


def remove_stale_temps(root: Path, *, only_dead: bool = True) -> list[Path]:
    """Delete ``.<name>.tmp-<pid>`` files and ``.*-spill-<pid>`` folders under ``root`` whose
    writer is gone (``only_dead``) or all of them (inside a locked run folder nothing else
    can be writing). Returns what was removed."""
    removed: list[Path] = []
    if is_remote(root) or not root.is_dir():  # object stores get whole objects only
        return removed
    for path in sorted(root.rglob(".*")):
        name = path.name
        marker = ".tmp-" if ".tmp-" in name else "-spill-" if "-spill-" in name else None
        if marker is None:
            continue
        pid_text = name.rsplit(marker, 1)[1]
        if not pid_text.isdigit() or int(pid_text) == os.getpid():
            continue
        if only_dead and _pid_alive(int(pid_text)):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed
