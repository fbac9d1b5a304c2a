"""What one worker does for one shard: read, transform, write atomically, record.

Output order inside a shard follows input order, and the Parquet writer settings are
fixed, so a shard rebuilt after a crash is byte-identical to the first attempt.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from metamix.base.atomic import atomic_path
from metamix.base.hashing import file_hash
from metamix.base.storage import arrow_source, as_path, relative
from metamix.pipeline.config import InputConfig
from metamix.pipeline.executor import report_progress, worker_cache
from metamix.pipeline.fields import KeptField
from metamix.pipeline.ingest import Canonicalizer
from metamix.pipeline.manifest import ShardRecord, ShardStats, StageManifest
from metamix.pipeline.readers import InputShard
from metamix.pipeline.stages import (
    QUARANTINE_SCHEMA,
    BatchStage,
    output_schema,
    reuse_warm,
    run_stages,
)
from metamix.pipeline.tokenizer import TokenIdsFile

#: zstd at level 1, Arrow's default (and so datatrove's): level 3 makes shards ~10% smaller
#: for 30-40% more write CPU (``bench/score_parts.py``), a poor trade for shards that the
#: next stage reads once.
PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd", "compression_level": 1,
                                   "write_statistics": True}
QUARANTINE_DETAIL_CHARS = 2000
#: Columns whose values are (nearly) all distinct: a dictionary page for them is built and
#: then thrown away (measured: 23% of the write time of a scored shard).
UNIQUE_COLUMNS = ("id", "text")


def shard_writer(path: Path, schema: pa.Schema) -> pq.ParquetWriter:
    return pq.ParquetWriter(path, schema, **PARQUET_OPTIONS, use_dictionary=[
        name for name in schema.names if name not in UNIQUE_COLUMNS])


@dataclass
class ShardTask:
    stage: str
    shard: str
    stage_dir: str
    input_label: str
    input_fingerprint: str
    config_hash: str
    # ingest tasks read an InputShard; transform tasks read a canonical Parquet file
    source: InputShard | None = None
    input_path: str | None = None
    stages: list[BatchStage] = field(default_factory=list)
    batch_size: int = 1000
    max_batch_bytes: int = 4_000_000
    #: ingest tasks: which of the run's input sources the shard belongs to
    input_index: int = 0


@dataclass
class _Outputs:
    data: Path
    quarantine: Path


def _paths(task: ShardTask) -> _Outputs:
    stage_dir = as_path(task.stage_dir)
    return _Outputs(stage_dir / f"{task.shard}.parquet",
                    stage_dir.parent / "quarantine" / f"{task.stage}-{task.shard}.parquet")


def _byte_size(batch: pa.RecordBatch) -> int:
    return int(pc.sum(pc.binary_length(batch.column("text"))).as_py() or 0)


def _quarantine_table(task: ShardTask, rows: list[dict[str, Any]]) -> pa.Table:
    def clip(v: Any) -> str | None:
        return None if v is None else str(v)[:QUARANTINE_DETAIL_CHARS]

    return pa.Table.from_pylist(
        [{"stage": task.stage, "shard": task.input_label, "row": r["row"], "id": clip(r["id"]),
          "reason": r["reason"], "detail": clip(r.get("detail"))} for r in rows],
        schema=QUARANTINE_SCHEMA,
    )


def _finish(task: ShardTask, outputs: _Outputs, quarantined: list[dict[str, Any]],
            stats: ShardStats, extra_outputs: tuple[Path, ...] = ()) -> ShardRecord:
    """Write quarantine (if any), then the record: the record is the commit point."""
    stats.check(f"{task.stage} shard {task.input_label}")
    stage_dir = as_path(task.stage_dir)
    written = {f"{stage_dir.name}/{outputs.data.name}": file_hash(outputs.data)}
    for path in extra_outputs:
        written[relative(path, stage_dir.parent)] = file_hash(path)
    if quarantined:
        with atomic_path(outputs.quarantine) as tmp:
            pq.write_table(_quarantine_table(task, quarantined), tmp, **PARQUET_OPTIONS)
        written[f"quarantine/{outputs.quarantine.name}"] = file_hash(outputs.quarantine)
    elif outputs.quarantine.exists():
        outputs.quarantine.unlink()
    rec = ShardRecord(task.shard, task.input_label, task.input_fingerprint, task.config_hash,
                      written, stats)
    StageManifest(stage_dir).save(rec)
    return rec


def ingest_shard(task: ShardTask, inp: InputConfig, kept: Sequence[KeptField] = ()
                 ) -> ShardRecord:
    assert task.source is not None
    outputs = _paths(task)
    canon = Canonicalizer(inp, task.source.path, kept)
    stats = ShardStats()
    quarantined: list[dict[str, Any]] = []
    with atomic_path(outputs.data) as tmp, shard_writer(tmp, canon.schema) as writer:
        for n_read, batch, bad in canon.read(task.source, task.batch_size):
            stats.read += n_read
            stats.written += batch.num_rows
            stats.quarantined.update(r["reason"] for r in bad)
            quarantined.extend(bad)
            if batch.num_rows:
                writer.write_batch(batch)
            nbytes = _byte_size(batch)
            stats.bytes_in += nbytes
            report_progress(n_read, nbytes)
    return _finish(task, outputs, quarantined, stats)


def _byte_bounded(batches: Iterator[pa.RecordBatch], max_bytes: int
                  ) -> Iterator[pa.RecordBatch]:
    """Split batches so none holds more than ``max_bytes`` of text (at least one row)."""
    for batch in batches:
        sizes = pc.binary_length(batch.column("text")).fill_null(0).to_numpy()
        if sizes.sum() <= max_bytes:
            yield batch
            continue
        ends = np.cumsum(sizes)
        start = 0
        while start < len(sizes):  # as many rows as fit, and at least one non-empty
            before = ends[start - 1] if start else 0
            first_text = np.searchsorted(ends, before, "right")
            stop = min(len(sizes), max(int(np.searchsorted(ends, before + max_bytes, "right")),
                                       int(first_text) + 1))
            yield batch.slice(start, stop - start)
            start = stop


def transform_shard(task: ShardTask) -> ShardRecord:
    assert task.input_path is not None
    outputs = _paths(task)
    reader = pq.ParquetFile(arrow_source(task.input_path))
    stages = reuse_warm(task.stages, worker_cache())
    schema = output_schema(stages, reader.schema_arrow)
    stats = ShardStats()
    quarantined: list[dict[str, Any]] = []
    row_offset = 0
    with TokenIdsFile(outputs.data) as token_ids:
        with atomic_path(outputs.data) as tmp, shard_writer(tmp, schema) as writer:
            for batch in _byte_bounded(reader.iter_batches(batch_size=task.batch_size),
                                       task.max_batch_bytes):
                res = run_stages(stages, batch)
                stats.read += batch.num_rows
                stats.written += res.batch.num_rows
                stats.dropped.update(res.dropped)
                stats.quarantined.update(Counter(r["reason"] for r in res.quarantined))
                for r in res.quarantined:
                    quarantined.append({**r, "row": r["row"] + row_offset})
                if res.batch.num_rows:
                    writer.write_batch(res.batch.select(schema.names))
                    token_ids.add(res.batch)
                nbytes = _byte_size(batch)
                stats.bytes_in += nbytes
                report_progress(batch.num_rows, nbytes)
                row_offset += batch.num_rows
        extra_outputs = token_ids.finish()
    return _finish(task, outputs, quarantined, stats, extra_outputs)
