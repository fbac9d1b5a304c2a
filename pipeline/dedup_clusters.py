"""The last two stages of the dedup pass: clusters out of core, then ``dups/`` per shard.

* ``clusters`` (one task): the connected components of the verified pairs and the exact
  links (an exact duplicate is a near duplicate too), by a union-find over a file-backed
  array of one int64 per document (``np.memmap``: the pages the kernel keeps, not the
  corpus, are in memory), each root the smallest row of its component, so the first
  document in run order names and is kept of its cluster (as ``minhash.lsh_clusters``).
  DuckDB then joins each clustered document's representatives to their ids, sorted by row,
  into ``clusters.parquet``; documents in no cluster are not in it.
* ``dups`` (one task per scored shard): the shard's ids with the clusters of its row
  range: NULL cluster and kept for documents in none.
"""

from __future__ import annotations

from pathlib import Path

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from metamix.pipeline.dedup_stages import (
    LINK_SCHEMA,
    LINKS,
    PAIRS,
    SIGNATURES,
    DedupTask,
    duckdb_connect,
    finish,
    spill_folder,
    sql_files,
    work_file,
)
from metamix.pipeline.executor import report_progress
from metamix.pipeline.manifest import ShardRecord

CLUSTERS = "clusters.parquet"
DUPS = "dups"
_CHUNK = 1 << 20
DUP_SCHEMA = pa.schema([("id", pa.string()), ("dup_exact_cluster", pa.string()),
                        ("dup_exact_keep", pa.bool_()), ("dup_near_cluster", pa.string()),
                        ("dup_near_keep", pa.bool_())])


@numba.njit(cache=True, nogil=True)
def _find(parent: np.ndarray, x: int) -> int:
    while parent[x] != x:            # path halving
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


@numba.njit(cache=True, nogil=True)
def union_edges(parent: np.ndarray, touched: np.ndarray, a: np.ndarray, b: np.ndarray
                ) -> None:
    """Join the components of each edge's ends; the smaller root becomes the root, so a
    root is always its component's smallest member."""
    for i in range(len(a)):
        if a[i] == b[i]:
            continue
        touched[a[i]] = 1
        touched[b[i]] = 1
        ra, rb = _find(parent, a[i]), _find(parent, b[i])
        if ra < rb:
            parent[rb] = ra
        elif rb < ra:
            parent[ra] = rb


@numba.njit(cache=True, nogil=True)
def roots(parent: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    out = np.empty(len(nodes), dtype=np.int64)
    for i in range(len(nodes)):
        out[i] = _find(parent, nodes[i])
    return out


def _union_file(parent: np.ndarray, touched: np.ndarray, path: Path, cols: tuple[str, str]
                ) -> None:
    for batch in pq.ParquetFile(path).iter_batches(_CHUNK, columns=list(cols)):
        union_edges(parent, touched, batch.column(0).to_numpy(), batch.column(1).to_numpy())


def _near_reps(task: DedupTask, spill: Path, n_docs: int, links: list[Path],
               pairs: list[Path]) -> Path:
    """(row, rep) of every document in a near cluster, into a file of the spill folder."""
    size = max(n_docs, 1)
    parent = np.memmap(spill / "parent.bin", dtype=np.int64, mode="w+", shape=(size,))
    touched = np.memmap(spill / "touched.bin", dtype=np.uint8, mode="w+", shape=(size,))
    for start in range(0, size, _CHUNK):
        parent[start:start + _CHUNK] = np.arange(start, min(start + _CHUNK, size))
    for path in links:
        _union_file(parent, touched, path, ("row", "rep"))
    for path in pairs:
        _union_file(parent, touched, path, ("a", "b"))
    out = spill / "near.parquet"
    with pq.ParquetWriter(out, LINK_SCHEMA, compression="zstd") as w:
        for start in range(0, size, _CHUNK):
            nodes = np.flatnonzero(touched[start:start + _CHUNK]) + start
            w.write_table(pa.table([nodes, roots(parent, nodes)], schema=LINK_SCHEMA))
    del parent, touched
    return out


def cluster_table(task: DedupTask) -> ShardRecord:
    """``clusters.parquet``: row, exact_rep, exact_cluster, near_rep, near_cluster."""
    p = task.params
    work = Path(task.work_dir)
    links = [work / f for f in task.inputs if f.startswith(LINKS + "/")]
    pairs = [work / f for f in task.inputs if f.startswith(PAIRS + "/")]
    ids = sql_files([str(work / f) for f in task.inputs
                     if f.startswith(SIGNATURES + "/") and f.endswith(".parquet")])
    empty = "SELECT NULL::BIGINT AS row, NULL::BIGINT AS rep WHERE false"
    out = work / CLUSTERS
    with spill_folder(task) as spill:
        near = _near_reps(task, spill, task.offset, links, pairs) if p.near else None
        exact_sql = (f"SELECT row, rep FROM read_parquet({sql_files([str(x) for x in links])})"
                     if p.exact and links else empty)
        near_sql = f"SELECT row, rep FROM read_parquet('{near}')" if near else empty
        con = duckdb_connect(p, spill)
        try:
            with work_file(out) as tmp:
                con.execute(
                    f"COPY (WITH e AS ({exact_sql}), n AS ({near_sql}), "
                    "m AS (SELECT row, e.rep AS exact_rep, n.rep AS near_rep "
                    "FROM e FULL JOIN n USING (row)) "
                    "SELECT m.row, m.exact_rep, ie.id AS exact_cluster, m.near_rep, "
                    f"inr.id AS near_cluster FROM m LEFT JOIN read_parquet({ids}) AS ie "
                    f"ON ie.row = m.exact_rep LEFT JOIN read_parquet({ids}) AS inr "
                    "ON inr.row = m.near_rep ORDER BY m.row) "
                    f"TO '{tmp}' (FORMAT parquet, COMPRESSION zstd)")
        finally:
            con.close()
    return finish(task, "clusters", [out], task.offset)


def _column(n: int, first: int, rows: np.ndarray, reps: pa.ChunkedArray,
            names: pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
    """(cluster, keep) of a shard's ``n`` documents (rows ``first`` on) from its clustered
    ``rows`` (shard-local) and their representatives (global rows) and ids."""
    present = pc.is_valid(reps).to_numpy(zero_copy_only=False)
    rows, rep = rows[present], reps.filter(present).to_numpy()
    if not len(rows):
        return pa.nulls(n, pa.string()), pa.array(np.ones(n, dtype=bool))
    where = np.full(n, -1, dtype=np.int64)
    where[rows] = np.arange(len(rows))
    cluster = pc.take(names.filter(present).cast(pa.string()),
                      pa.array(where, mask=where < 0)).combine_chunks()
    keep = np.ones(n, dtype=bool)
    keep[rows] = rep == rows + first
    return cluster, pa.array(keep)


def write_dups(task: DedupTask) -> ShardRecord:
    """``<work>/dups/<shard>.parquet``, row for row with the scored shard."""
    work = Path(task.work_dir)
    ids = pq.read_table(work / SIGNATURES / f"{task.shard}.parquet", columns=["id"])
    n = ids.num_rows
    first = task.offset
    clustered = pq.read_table(work / CLUSTERS, filters=[("row", ">=", first),
                                                        ("row", "<", first + n)])
    local = clustered.column("row").to_numpy() - first
    none = (pa.nulls(n, pa.string()), pa.array(np.ones(n, dtype=bool)))
    exact = (_column(n, first, local, clustered.column("exact_rep"),
                     clustered.column("exact_cluster")) if task.params.exact else none)
    near = (_column(n, first, local, clustered.column("near_rep"),
                    clustered.column("near_cluster")) if task.params.near else none)
    table = pa.Table.from_arrays([ids.column("id").combine_chunks(), *exact, *near],
                                 schema=DUP_SCHEMA)
    out = work / DUPS / f"{task.shard}.parquet"
    with work_file(out) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    report_progress(n, 0)
    return finish(task, DUPS, [out], n)
