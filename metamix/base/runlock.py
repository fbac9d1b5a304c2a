"""One command at a time per run folder, and no temporary file left behind by a killed one.

Two commands writing the same ``out/<run>/`` would delete each other's temporary files and
interleave manifests. ``run_lock`` takes an exclusive ``flock`` on ``out/<run>/.lock`` and
records the holder's PID there; the kernel drops the lock when its process dies, so a lock
left by a killed run is taken over by the next one without any cleanup.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from metamix.base.errors import UserError
from metamix.base.hashing import json_hash
from metamix.base.storage import is_remote

LOCK_NAME = ".lock"


def _lock_file(run_dir: Path) -> Path:
    """``<run>/.lock``; for a run folder on an object store (which has no locks), a local
    file named after its URI: it keeps two commands on this machine apart, not two
    machines."""
    if not is_remote(run_dir):
        run_dir.mkdir(parents=True, exist_ok=True)
        return run_dir / LOCK_NAME
    folder = Path(tempfile.gettempdir()) / "metamix-locks"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{json_hash(str(run_dir))}.lock"


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
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)   # closing releases the lock


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
