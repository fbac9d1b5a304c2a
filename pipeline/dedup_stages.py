"""The first two stages of the dedup pass, each a list of tasks for the run's executor.

* ``signatures`` (one task per scored shard): each document's global row number (shard,
  then row: run order), id and MinHash signature, and its keys split by hash into
  ``dedup.partitions`` partitions: the LSH band keys of documents with words, and the exact
  key (``exact_key``). A partition is one row group of the shard's
  key file, so a partition task reads only its own part of every file.
* ``pairs`` (one task per partition): DuckDB sorts the partition's band keys and pairs each
  document with the previous one of the same band and key (the chains
  ``minhash.lsh_clusters`` forms); each distinct pair is then verified on the whole
  signatures (memory-mapped ``.npy`` per shard: a pair reads its two rows) against the
  agreement bar. Exact keys are
  grouped into links from every member to the first document with the key.

Every task reads and writes files only, holds one shard (``signatures``) or what DuckDB's
memory limit allows (``pairs``), and writes atomically; its ``ShardRecord`` makes it
resumable like any shard of a stage.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from metamix.base.atomic import atomic_path, write_bytes_atomic
from metamix.base.hashing import file_hash
from metamix.base.storage import arrow_source
from metamix.pipeline.manifest import ShardRecord, ShardStats, StageManifest

SIGNATURES = "signatures"
BAND_KEYS = "band_keys"
EXACT_KEYS = "exact_keys"
PAIRS = "pairs"
LINKS = "links"
_READ_ROWS = 2048
_STREAM_ROWS = 65_536
_KEY_SCHEMA = pa.schema([("part", pa.int32()), ("band", pa.int16()), ("key", pa.uint64()),
                         ("row", pa.int64())])
_EXACT_SCHEMA = pa.schema([("part", pa.int32()), ("key", pa.binary(16)), ("row", pa.int64())])
PAIR_SCHEMA = pa.schema([("a", pa.int64()), ("b", pa.int64())])
LINK_SCHEMA = pa.schema([("row", pa.int64()), ("rep", pa.int64())])


@dataclass(frozen=True)
class DedupParams:
    """What the tasks need of ``dedup`` and the LSH parameters derived from it."""

    exact: bool
    near: bool
    num_perm: int
    ngram: int
    seed: int
    bands: int
    rows: int
    min_agreement: float
    partitions: int
    memory_limit: str
    threads: int


@dataclass
class DedupTask:
    """One task of a dedup stage; ``shard`` names its record (``part-N``, ``p-0003``)."""

    shard: str
    input_fingerprint: str
    config_hash: str
    work_dir: str
    params: DedupParams
    scored_path: str = ""          # signatures, dups: the scored shard
    offset: int = 0                # its first document's row number
    partition: int = 0             # pairs
    offsets: list[int] = field(default_factory=list)   # pairs: each shard's first row
    inputs: list[str] = field(default_factory=list)   # files under work_dir it reads


def exact_key(text: str) -> bytes:
    """The normalized content hash: NFKC, case-folded, runs of whitespace as one space."""
    normalized = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    return hashlib.blake2b(normalized.encode("utf-8"), digest_size=16).digest()


ID_SCHEMA = pa.schema([("row", pa.int64()), ("id", pa.string())])


def finish(task: DedupTask, stage: str, outputs: list[Path], docs: int) -> ShardRecord:
    """Save the task's record (``<work>/_manifests/<stage>/<shard>.json``, after its outputs:
    a task killed before has none and runs again) and return it."""
    work = Path(task.work_dir)
    rec = ShardRecord(shard=task.shard, input="dedup", input_fingerprint=task.input_fingerprint,
                      config_hash=task.config_hash,
                      outputs={str(p.relative_to(work)): file_hash(p) for p in outputs},
                      stats=ShardStats(read=docs, written=docs))
    text = json.dumps(rec.to_json(), indent=2, sort_keys=True) + "\n"
    write_bytes_atomic(StageManifest(work / stage).record_path(task.shard), text.encode(),
                       confined=False)   # as work_file
    return rec


@contextmanager
def work_file(path: Path) -> Iterator[Path]:
    """``atomic_path`` for a file of the work folder (which may lie outside the run folder:
    its paths come from the config and shard names, never from the data)."""
    with atomic_path(path, confined=False) as tmp:
        yield tmp


@contextmanager
def spill_folder(task: DedupTask) -> Iterator[Path]:
    """A task's own DuckDB spill folder (removed after; a killed task's is removed with the
    run folder's other leftovers, ``runlock.remove_stale_temps``)."""
    path = Path(task.work_dir) / f".{task.shard}-spill-{os.getpid()}"
    path.mkdir(parents=True, exist_ok=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def duckdb_connect(params: DedupParams, spill: Path) -> Any:
    from metamix.pipeline.selection.engine import connect

    return connect(params.memory_limit, params.threads, spill)


def sql_files(paths: list[str]) -> str:
    """A DuckDB list literal of file paths."""
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


def _write_partitioned(path: Path, table: pa.Table) -> None:
    """One row group per partition (in partition order), so a reader filtering on
    ``part`` skips the others by their statistics."""
    order = np.argsort(table.column("part").to_numpy(), kind="stable")
    table = table.take(order)
    parts = table.column("part").to_numpy()
    bounds = np.flatnonzero(np.diff(parts)) + 1
    with work_file(path) as tmp, pq.ParquetWriter(tmp, table.schema, compression="zstd") as w:
        for start, end in zip([0, *bounds], [*bounds, len(parts)], strict=True):
            w.write_table(table.slice(start, end - start))
        if not len(parts):
            w.write_table(table)


def signature_shard(task: DedupTask) -> ShardRecord:
    """Signatures, band keys and exact keys of one scored shard."""
    from metamix.pipeline.executor import report_progress
    from metamix.pipeline.minhash import EMPTY, MinHasher, band_keys

    p = task.params
    work = Path(task.work_dir)
    hasher = MinHasher(num_perm=p.num_perm, ngram=p.ngram, seed=p.seed)
    ids_path = work / SIGNATURES / f"{task.shard}.parquet"
    sig_path = work / SIGNATURES / f"{task.shard}.npy"
    bands_path = work / BAND_KEYS / f"{task.shard}.parquet"
    exact_path = work / EXACT_KEYS / f"{task.shard}.parquet"
    band_parts: list[pa.Table] = []
    exact_parts: list[pa.Table] = []
    row = task.offset
    reader = pq.ParquetFile(arrow_source(task.scored_path))
    n_docs = reader.metadata.num_rows
    with work_file(ids_path) as ids_tmp, work_file(sig_path) as sig_tmp, \
            pq.ParquetWriter(ids_tmp, ID_SCHEMA, compression="zstd") as out:
        # uncompressed (MinHash values do not compress): verification reads single rows
        matrix = np.lib.format.open_memmap(sig_tmp, mode="w+", dtype=np.uint32,
                                           shape=(n_docs, p.num_perm))
        for batch in reader.iter_batches(_READ_ROWS, columns=["id", "text"]):
            texts = batch.column("text")
            rows = np.arange(row, row + batch.num_rows, dtype=np.int64)
            if p.near:
                sig = hasher.signatures(texts)
            else:
                sig = np.full((batch.num_rows, p.num_perm), EMPTY, dtype=np.uint32)
            out.write_table(pa.table([rows, batch.column("id").cast(pa.string())],
                                     schema=ID_SCHEMA))
            matrix[row - task.offset:row - task.offset + batch.num_rows] = sig
            if p.near:
                has_words = ~np.all(sig == EMPTY, axis=1)
                keys = band_keys(np.ascontiguousarray(sig[has_words]), p.bands, p.rows)
                n_bands = keys.shape[1]
                flat = keys.reshape(-1)
                band_parts.append(pa.table([
                    (flat % np.uint64(p.partitions)).astype(np.int32),
                    np.tile(np.arange(n_bands, dtype=np.int16), len(keys)), flat,
                    np.repeat(rows[has_words], n_bands)], schema=_KEY_SCHEMA))
            if p.exact:
                digests = [exact_key(t) for t in texts.to_pylist()]
                part = np.array([int.from_bytes(d[:8], "little") % p.partitions
                                 for d in digests], dtype=np.int32)
                exact_parts.append(pa.table([part, pa.array(digests, pa.binary(16)), rows],
                                            schema=_EXACT_SCHEMA))
            row += batch.num_rows
            report_progress(batch.num_rows, texts.nbytes)
        matrix.flush()
        del matrix
    _write_partitioned(bands_path, pa.concat_tables(band_parts) if band_parts
                       else _KEY_SCHEMA.empty_table())
    _write_partitioned(exact_path, pa.concat_tables(exact_parts) if exact_parts
                       else _EXACT_SCHEMA.empty_table())
    return finish(task, SIGNATURES, [ids_path, sig_path, bands_path, exact_path],
                  row - task.offset)


def _candidates(con: Any, band_files: list[str], partition: int, out: Path) -> int:
    """Each document paired with the previous one of the same band and key (row order),
    streamed from DuckDB's sort into ``out``; the number of pairs written."""
    reader = con.sql(f"SELECT band, key, row FROM read_parquet({sql_files(band_files)}) "
                     f"WHERE part = {partition} ORDER BY band, key, row"
                     ).to_arrow_reader(_STREAM_ROWS)
    last: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    written = 0
    with pq.ParquetWriter(out, PAIR_SCHEMA, compression="zstd") as w:
        for batch in reader:
            if not batch.num_rows:
                continue
            band, key, row = (batch.column(i).to_numpy() for i in range(3))
            if last is not None:
                band, key, row = (np.concatenate([x[-1:], y])
                                  for x, y in zip(last, (band, key, row), strict=True))
            same = (band[1:] == band[:-1]) & (key[1:] == key[:-1])
            if same.any():
                w.write_table(pa.table([row[:-1][same], row[1:][same]], schema=PAIR_SCHEMA))
                written += int(same.sum())
            last = (band, key, row)
    return written


class SignatureLookup:
    """Signatures by global row from the shards' ``.npy`` files, memory-mapped: a lookup
    reads the pages of the rows asked for, not the files."""

    def __init__(self, paths: list[Path], offsets: list[int]) -> None:
        self.paths, self.offsets = paths, np.asarray(offsets, dtype=np.int64)
        self._open: dict[int, np.ndarray] = {}

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        shard = np.searchsorted(self.offsets, rows, side="right") - 1
        out = None
        for s in np.unique(shard):
            if s not in self._open:
                self._open[s] = np.load(self.paths[s], mmap_mode="r")
            matrix = self._open[s]
            if out is None:
                out = np.empty((len(rows), matrix.shape[1]), dtype=np.uint32)
            mine = shard == s
            out[mine] = matrix[rows[mine] - self.offsets[s]]
        return out if out is not None else np.zeros((0, 0), dtype=np.uint32)


def _verify(con: Any, candidates: Path, lookup: SignatureLookup, params: DedupParams,
            out: Path) -> int:
    """The distinct candidate pairs whose signatures agree on at least ``min_agreement`` of
    their values, written to ``out``; the number written."""
    reader = con.sql(f"SELECT DISTINCT a, b FROM read_parquet('{candidates}')"
                     ).to_arrow_reader(_STREAM_ROWS)
    kept = 0
    with pq.ParquetWriter(out, PAIR_SCHEMA, compression="zstd") as w:
        for batch in reader:
            if not batch.num_rows:
                continue
            a, b = batch.column(0).to_numpy(), batch.column(1).to_numpy()
            keep = (lookup(a) == lookup(b)).mean(axis=1) >= params.min_agreement
            if keep.any():
                w.write_table(pa.table([a[keep], b[keep]], schema=PAIR_SCHEMA))
                kept += int(keep.sum())
    return kept


def _exact_links(con: Any, exact_files: list[str], partition: int, out: Path) -> None:
    """(row, rep) for every document whose exact key another document shares: rep is the
    first of them in run order."""
    con.execute(
        f"COPY (WITH x AS (SELECT key, row FROM read_parquet({sql_files(exact_files)}) "
        f"WHERE part = {partition}), g AS (SELECT key, min(row) AS rep FROM x GROUP BY key "
        "HAVING count(*) > 1) SELECT x.row, g.rep FROM x JOIN g USING (key) ORDER BY x.row) "
        f"TO '{out}' (FORMAT parquet, COMPRESSION zstd)")


def pair_partition(task: DedupTask) -> ShardRecord:
    """Verified near-duplicate pairs and exact links of one partition."""
    p = task.params
    work = Path(task.work_dir)
    pairs_path = work / PAIRS / f"{task.shard}.parquet"
    links_path = work / LINKS / f"{task.shard}.parquet"
    files = {kind: [str(work / f) for f in task.inputs if f.startswith(kind + "/")]
             for kind in (BAND_KEYS, EXACT_KEYS)}
    lookup = SignatureLookup([work / f for f in task.inputs if f.endswith(".npy")],
                             task.offsets)
    verified = 0
    with spill_folder(task) as spill:
        con = duckdb_connect(p, spill)
        try:
            with work_file(pairs_path) as tmp:
                if p.near:
                    candidates = spill / "candidates.parquet"
                    _candidates(con, files[BAND_KEYS], task.partition, candidates)
                    verified = _verify(con, candidates, lookup, p, tmp)
                else:
                    pq.write_table(PAIR_SCHEMA.empty_table(), tmp, compression="zstd")
            with work_file(links_path) as tmp:
                if p.exact:
                    _exact_links(con, files[EXACT_KEYS], task.partition, tmp)
                else:
                    pq.write_table(LINK_SCHEMA.empty_table(), tmp, compression="zstd")
        finally:
            con.close()
    return finish(task, PAIRS, [pairs_path, links_path], verified)
