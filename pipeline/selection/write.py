"""Stream selected rows from DuckDB into one Parquet file per domain, deterministically.

DuckDB's record-batch boundaries depend on thread scheduling, so batches are re-cut into
fixed ``ROW_GROUP_ROWS`` row groups: with the rows already in a total order (ORDER BY ...,
id), the bytes written depend only on the data. Only one row group per domain is buffered.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from operator import itemgetter
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from rich.console import Console
from rich.progress import Progress

from metamix.base.atomic import atomic_path
from metamix.base.names import file_name

ROW_GROUP_ROWS = 8192
ARROW_BATCH_ROWS = 2048
COMPRESSION = "zstd"


def domain_file_name(domain: str) -> str:
    """``<domain>.parquet`` for a safe domain name, else ``<slug>~<hash>.parquet``
    (``metamix.base.names.file_name``)."""
    return f"{file_name(domain)}.parquet"


class _FixedRowGroupWriter:
    """Parquet writer whose row-group boundaries depend on row counts only."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self._writer = pq.ParquetWriter(path, schema, compression=COMPRESSION)
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self.rows_written = 0

    def write(self, batch: pa.RecordBatch) -> None:
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        while self._pending_rows >= ROW_GROUP_ROWS:
            table = pa.Table.from_batches(self._pending)
            self._flush(table.slice(0, ROW_GROUP_ROWS))
            rest = table.slice(ROW_GROUP_ROWS)
            self._pending = rest.to_batches()
            self._pending_rows = rest.num_rows

    def _flush(self, table: pa.Table) -> None:
        self._writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        self.rows_written += table.num_rows

    def close(self) -> int:
        if self._pending_rows:
            self._flush(pa.Table.from_batches(self._pending))
        self._pending = []
        self._writer.close()
        return self.rows_written


def _domain_runs(
    reader: pa.RecordBatchReader, domain_column: str
) -> Iterator[tuple[str, pa.RecordBatch]]:
    """Split each batch (rows sorted by domain) into single-domain slices."""
    for batch in reader:
        n = batch.num_rows
        if n == 0:
            continue
        domains = batch.column(domain_column)
        changed = pc.not_equal(domains.slice(1), domains.slice(0, n - 1))
        # indices_nonzero (nulls count as false) and to_pylist: to_numpy or fill_null would
        # make pyarrow import pandas, half a second of a small selection
        cuts = [i + 1 for i in pc.indices_nonzero(changed).to_pylist()]
        for start, stop in itertools.pairwise([0, *cuts, n]):
            yield domains[start].as_py(), batch.slice(start, stop - start)


def write_selected(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    selected_dir: Path,
    files: dict[str, str],
    *,
    total_rows: int,
    progress: bool,
) -> dict[str, int]:
    """Run ``sql`` (ordered by domain first) and write each domain's rows; return row counts.

    Every domain in ``files`` gets a file (empty if nothing was kept), and stale
    ``*.parquet`` from an earlier run with other domains are removed, so ``selected/``
    always mirrors this run.
    """
    reader = con.sql(sql).to_arrow_reader(ARROW_BATCH_ROWS)
    schema = reader.schema
    written: dict[str, int] = {}
    with Progress(console=Console(stderr=True), transient=True, disable=not progress) as bar:
        task = bar.add_task("writing selected documents", total=total_rows)
        runs = _domain_runs(reader, "domain")
        for domain, group in itertools.groupby(runs, key=itemgetter(0)):
            if domain in written or domain not in files:
                raise RuntimeError(f"selection output not grouped by known domain: {domain!r}")
            with atomic_path(selected_dir / files[domain]) as tmp:
                writer = _FixedRowGroupWriter(tmp, schema)
                try:
                    for _, batch in group:
                        writer.write(batch)
                        bar.advance(task, batch.num_rows)
                finally:
                    written[domain] = writer.close()
    for domain in sorted(set(files) - set(written)):
        with atomic_path(selected_dir / files[domain]) as tmp:
            written[domain] = _FixedRowGroupWriter(tmp, schema).close()
    expected = set(files.values())
    for stale in selected_dir.glob("*.parquet"):
        if stale.name not in expected:
            stale.unlink()
    return written
