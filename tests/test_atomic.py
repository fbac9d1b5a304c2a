"""Atomic outputs seen from a concurrent reader: never a torn file."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from metamix.base.atomic import atomic_path, read_parquet_whole, write_json_atomic
from metamix.base.errors import UserError


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



@pytest.mark.skipif(not Path("/dev/full").is_char_device(), reason="needs /dev/full")
def test_a_full_disk_names_the_file_being_written_and_leaves_no_temp(tmp_path: Path) -> None:
    """/dev/full fails every write with ENOSPC, as a full disk does: neither a plain
    write() nor Arrow's writer names the file in its error. (Through an open handle:
    ``pq.write_table`` given a path deletes that path when the write fails.)"""
    table = pa.table({"a": list(range(100_000))})

    def plain_write(tmp: Path) -> None:
        with open("/dev/full", "ab", buffering=0) as fh:
            fh.write(b"x" * 10)

    def arrow_write(tmp: Path) -> None:
        with pa.OSFile("/dev/full", "ab") as fh:
            pq.write_table(table, fh)

    for i, write in enumerate([plain_write, arrow_write]):
        dest = tmp_path / "out" / f"part-{i}.parquet"
        with pytest.raises(UserError) as caught, atomic_path(dest) as tmp:
            tmp.write_bytes(b"")
            write(tmp)
        assert str(caught.value) == (f"{dest}: no space left on device; free some space and "
                                     "rerun to resume")
        assert list(dest.parent.iterdir()) == []
    assert Path("/dev/full").is_char_device()


def test_a_kill_point_named_by_its_file_and_occurrence(tmp_path: Path) -> None:
    """``METAMIX_FAULT_KILL_ON``: the process group dies at the n-th time that point comes,
    whatever other files' points came between."""
    dest = tmp_path / "a.json"
    script = ("from metamix.base.atomic import write_bytes_atomic as w\n"
              f"w({str(tmp_path / 'b.json')!r}, b'b')\n"
              + "".join(f"w({str(dest)!r}, b'{i}')\n" for i in range(3)))
    env = {**os.environ, "METAMIX_FAULT_COUNTER": str(tmp_path / "points.log"),
           "METAMIX_FAULT_KILL_ON": f"1\tafter\t{dest}"}
    done = subprocess.run([sys.executable, "-c", script], env=env, start_new_session=True,
                          timeout=60)
    assert done.returncode == -signal.SIGKILL
    assert dest.read_bytes() == b"1"   # killed just after its second rename
    assert (tmp_path / "points.log").read_text().splitlines() == [
        f"before\t{tmp_path / 'b.json'}", f"after\t{tmp_path / 'b.json'}",
        f"before\t{dest}", f"after\t{dest}", f"before\t{dest}", f"after\t{dest}"]
