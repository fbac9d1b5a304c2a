"""Atomic file output: every file the pipeline writes appears whole or not at all.

A killed process leaves only ``.<name>.tmp-<pid>`` files behind, which the next command on
the same run folder removes (``runlock.remove_stale_temps``) and a rerun never reads, so
resuming never sees a half-written shard.

Fault injection (``bench/fault_injection.py``): with ``METAMIX_FAULT_COUNTER`` naming a file,
every commit point (just before and just after each rename) is appended to it, across all
processes of a command; with ``METAMIX_FAULT_KILL_AT=N`` as well, the command's whole process
group is SIGKILLed at the N-th point (0-based), and with ``METAMIX_FAULT_KILL_ON=N<tab>POINT``
at the N-th time (0-based) the point ``before|after<tab><dest>`` comes (which file's rename
is the N-th point varies with the workers' timing; a point named by its file does not).

Inside ``confined_to(run_dir, ...)`` (every command that holds a run folder's lock),
``atomic_path`` refuses a destination outside those folders: the last line of defence if a
value from the data reaches a path unmapped (``metamix.base.names.file_name`` is the first).
The folders are kept in the environment (``METAMIX_WRITE_ROOTS``), so the command's worker
processes, which take its environment, refuse the same.
"""

from __future__ import annotations

import errno
import json
import os
import posixpath
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from metamix.base.errors import UserError
from metamix.base.storage import as_path, is_remote, open_binary, upload

if TYPE_CHECKING:
    import pyarrow as pa


ROOTS_ENV = "METAMIX_WRITE_ROOTS"


def disk_full(exc: OSError) -> bool:
    """A full disk or quota (Arrow's writer puts the errno in its text only, at times)."""
    return exc.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left on device" in str(exc)


def _normal(path: str | os.PathLike[str]) -> str:
    """An absolute path with ``..`` and symlinks resolved (an object-store URI: ``..``
    collapsed), to compare against the roots."""
    p = as_path(path)
    return posixpath.normpath(str(p)) if is_remote(p) else str(Path(p).resolve())


@contextmanager
def confined_to(*roots: str | os.PathLike[str]) -> Iterator[None]:
    """For the block, ``atomic_path`` refuses any destination outside ``roots``."""
    saved = os.environ.get(ROOTS_ENV)
    os.environ[ROOTS_ENV] = "\n".join(_normal(r) for r in roots)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(ROOTS_ENV, None)
        else:
            os.environ[ROOTS_ENV] = saved


def check_confined(dest: str | os.PathLike[str]) -> None:
    """Raise ``UserError`` if ``dest`` lies outside the folders of ``confined_to``."""
    roots = os.environ.get(ROOTS_ENV)
    if not roots:
        return
    target = _normal(dest)
    if not any(target == r or target.startswith(r.rstrip("/") + "/")
               for r in roots.split("\n")):
        raise UserError(f"refusing to write {dest}: outside the run folder "
                        f"({roots.splitlines()[0]})")


@contextmanager
def atomic_path(dest: str | os.PathLike[str], *, confined: bool = True) -> Iterator[Path]:
    """Yield a temporary sibling path; rename it onto ``dest`` only if the block succeeds.

    On an object store (``dest`` a URI) the temporary file is local and is uploaded as one
    object when the block succeeds: an object appears whole or not at all. Inside
    ``confined_to`` a ``dest`` outside its folders is refused before anything is created
    (``confined=False``: a file that belongs to no run, such as the kernels' cache stamp)."""
    if confined:
        check_confined(dest)
    dest = as_path(dest)
    if is_remote(dest):
        with tempfile.TemporaryDirectory(prefix="metamix-upload-") as folder:
            tmp = Path(folder) / dest.name
            yield tmp
            commit_point("before", dest)
            upload(tmp, dest)
            commit_point("after", dest)
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    try:
        try:
            yield tmp
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        except OSError as exc:
            if not disk_full(exc):
                raise
            # a write() or Arrow's writer says which errno, never which file
            raise UserError(f"{dest}: no space left on device; free some space and rerun "
                            "to resume") from None
        commit_point("before", dest)
        os.replace(tmp, dest)
        commit_point("after", dest)
    finally:
        if tmp.exists():
            tmp.unlink()


_FAULT_COUNTER = os.environ.get("METAMIX_FAULT_COUNTER")
_FAULT_KILL_AT = os.environ.get("METAMIX_FAULT_KILL_AT")
_FAULT_KILL_ON = os.environ.get("METAMIX_FAULT_KILL_ON")


def commit_point(phase: str, dest: Path) -> None:
    """A commit point for fault injection: call with ``before`` and ``after`` around a
    rename that publishes a file (a no-op unless ``METAMIX_FAULT_COUNTER`` is set)."""
    if _FAULT_COUNTER is None:
        return
    import fcntl
    import signal

    point = f"{phase}\t{dest}"
    with open(_FAULT_COUNTER, "a+", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        lines = fh.read().splitlines()
        fh.write(point + "\n")
        fh.flush()
    if _FAULT_KILL_AT is not None and len(lines) == int(_FAULT_KILL_AT):
        os.killpg(os.getpgrp(), signal.SIGKILL)
    if _FAULT_KILL_ON is not None:
        nth, target = _FAULT_KILL_ON.split("\t", 1)
        if point == target and lines.count(point) == int(nth):
            os.killpg(os.getpgrp(), signal.SIGKILL)


def write_bytes_atomic(dest: str | os.PathLike[str], data: bytes, *,
                       confined: bool = True) -> None:
    with atomic_path(dest, confined=confined) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(dest: str | os.PathLike[str], obj: Any) -> None:
    """Stable JSON (sorted keys, fixed indent) so reruns produce identical bytes."""
    text = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"
    write_bytes_atomic(dest, text.encode("utf-8"))


def read_parquet_whole(path: str | os.PathLike[str], columns: list[str] | None = None) -> pa.Table:
    """Read a Parquet file through one open handle.

    ``pq.read_table(path)`` opens the file more than once (footer, then pages); when a live
    writer atomically replaces the file in between, it mixes the old footer with the new
    pages and fails with "Page was smaller than expected". One handle pins one inode.
    """
    import pyarrow.parquet as pq  # here, so importing this module stays cheap

    with open_binary(path) as fh:
        return pq.read_table(fh, columns=columns)
