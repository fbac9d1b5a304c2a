"""Atomic file output: every file the pipeline writes appears whole or not at all.

A killed process leaves only ``*.tmp-<pid>`` files behind, which a rerun ignores and
overwrites, so resuming never reads a half-written shard.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa


@contextmanager
def atomic_path(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary sibling path; rename it onto ``dest`` only if the block succeeds."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()


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

    with open(path, "rb") as fh:
        return pq.read_table(fh, columns=columns)
