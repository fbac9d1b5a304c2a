"""Atomic outputs seen from a concurrent reader: never a torn file."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from metamix.base.atomic import atomic_path, read_parquet_whole, write_json_atomic


def _rewrite(path: str, times: int) -> None:
    rows: list[dict[str, object]] = []
    for i in range(times):
        rows.append({"run_id": f"run-{i:04d}", "loss": float(i)})
        with atomic_path(path) as tmp:
            pq.write_table(pa.Table.from_pylist(rows), tmp)


def test_reader_never_sees_a_torn_table_while_a_writer_replaces_it(tmp_path: Path) -> None:
    path = tmp_path / "runs.parquet"
    writer = mp.get_context("spawn").Process(target=_rewrite, args=(str(path), 400))
    writer.start()
    reads = 0
    while writer.is_alive() or reads == 0:
        if path.is_file():
            table = read_parquet_whole(path)
            # Every snapshot is some whole prefix of the writer's rows.
            ids = table.column("run_id").to_pylist()
            assert ids == [f"run-{i:04d}" for i in range(len(ids))]
            reads += 1
    writer.join()
    assert writer.exitcode == 0
    assert read_parquet_whole(path, columns=["loss"]).column("loss").to_pylist()[-1] == 399.0
    assert reads > 1


def test_failed_block_leaves_no_file_and_no_temporary(tmp_path: Path) -> None:
    dest = tmp_path / "out" / "weights.json"
    try:
        with atomic_path(dest) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    except RuntimeError:
        pass
    assert not dest.exists() and list(dest.parent.iterdir()) == []
    write_json_atomic(dest, {"b": 1, "a": [1, 2]})
    assert dest.read_text() == '{\n  "a": [\n    1,\n    2\n  ],\n  "b": 1\n}\n'
