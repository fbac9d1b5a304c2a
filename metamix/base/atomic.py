"""Atomic file output: every file the pipeline writes appears whole or not at all.

A killed process leaves only ``.<name>.tmp-<pid>`` files behind, which the next command on
the same run folder removes (``runlock.remove_stale_temps``) and a rerun never reads, so
resuming never sees a half-written shard.

Fault injection (``bench/fault_injection.py``): with ``METAMIX_FAULT_COUNTER`` naming a file,
every commit point (just before and just after each rename) is appended to it, across all
processes of a command; with ``METAMIX_FAULT_KILL_AT=N`` as well, the command's whole process
group is SIGKILLed at the N-th point (0-based).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from metamix.base.storage import as_path, is_remote, open_binary, upload

if TYPE_CHECKING:
    import pyarrow as pa


@contextmanager
def atomic_path(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary sibling path; rename it onto ``dest`` only if the block succeeds.

    On an object store (``dest`` a URI) the temporary file is local and is uploaded as one
    object when the block succeeds: an object appears whole or not at all."""
    dest = as_path(dest)
    if is_remote(dest):
        with tempfile.TemporaryDirectory(prefix="metamix-upload-") as folder:
            tmp = Path(folder) / dest.name
            yield tmp
            _commit_point("before", dest)
            upload(tmp, dest)
            _commit_point("after", dest)
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        _commit_point("before", dest)
        os.replace(tmp, dest)
        _commit_point("after", dest)
    finally:
        if tmp.exists():
            tmp.unlink()


_FAULT_COUNTER = os.environ.get("METAMIX_FAULT_COUNTER")
_FAULT_KILL_AT = os.environ.get("METAMIX_FAULT_KILL_AT")


def _commit_point(phase: str, dest: Path) -> None:
    if _FAULT_COUNTER is None:
        return
    import fcntl
    import signal

    with open(_FAULT_COUNTER, "a+", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        index = sum(1 for _ in fh)
        fh.write(f"{phase}\t{dest}\n")
        fh.flush()
    if _FAULT_KILL_AT is not None and index == int(_FAULT_KILL_AT):
        os.killpg(os.getpgrp(), signal.SIGKILL)


def write_bytes_atomic(dest: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(dest) as tmp:
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
