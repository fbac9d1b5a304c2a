"""Stage contracts: pure functions from a record batch to a record batch.

Stages declare the columns they read and write (as NeMo Curator's stages do) and carry no
I/O or executor state, so the local process-pool executor here and a Ray Data executor
later can run the same objects. Rows a stage removes are either *dropped* (a quality
decision, counted by reason) or *quarantined* (bad input, kept with a reason for a human).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from metamix.scorers.base import Scorer

QUARANTINE_SCHEMA = pa.schema(
    [
        ("stage", pa.string()),
        ("shard", pa.string()),
        ("row", pa.int64()),
        ("id", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
    ]
)


@dataclass
class StageResult:
    batch: pa.RecordBatch
    dropped: Counter[str] = field(default_factory=Counter)
    quarantined: list[dict[str, Any]] = field(default_factory=list)


class BatchStage(Protocol):
    name: str
    input_columns: tuple[str, ...]

    def output_fields(self) -> list[pa.Field]: ...

    def __call__(self, batch: pa.RecordBatch) -> StageResult: ...


def output_schema(stages: list[BatchStage], input_schema: pa.Schema) -> pa.Schema:
    """The schema after running ``stages`` in order, checking each one's declared inputs."""
    schema = input_schema
    for stage in stages:
        missing = [c for c in stage.input_columns if c not in schema.names]
        if missing:
            raise ValueError(f"stage {stage.name} needs columns {missing}, has {schema.names}")
        for f in stage.output_fields():
            if f.name in schema.names:
                raise ValueError(f"stage {stage.name} would overwrite column {f.name!r}")
            schema = schema.append(f)
    return schema


def run_stages(stages: list[BatchStage], batch: pa.RecordBatch) -> StageResult:
    total = StageResult(batch)
    for stage in stages:
        res = stage(total.batch)
        total.batch = res.batch
        total.dropped.update(res.dropped)
        total.quarantined.extend(res.quarantined)
    return total


class QuarantineIds:
    """Moves rows whose id is in a given set to quarantine (e.g. ids already seen in an
    earlier shard, which only a global pass can know)."""

    name = "quarantine_ids"
    input_columns = ("id",)

    def __init__(self, ids: set[str], reason: str, detail: str = "") -> None:
        self.ids = ids
        self.reason = reason
        self.detail = detail

    def output_fields(self) -> list[pa.Field]:
        return []

    def __call__(self, batch: pa.RecordBatch) -> StageResult:
        if not self.ids:
            return StageResult(batch)
        hit = pc.is_in(batch.column("id"), value_set=pa.array(sorted(self.ids), pa.string()))
        hit = hit.fill_null(False)
        bad_rows = np.flatnonzero(hit.to_numpy(zero_copy_only=False))
        if len(bad_rows) == 0:
            return StageResult(batch)
        ids = batch.column("id")
        quarantined = [
            {"id": ids[int(i)].as_py(), "reason": self.reason, "detail": self.detail,
             "row": int(i)}
            for i in bad_rows
        ]
        return StageResult(batch.filter(pc.invert(hit)), quarantined=quarantined)


class CountTokens:
    """Adds ``n_tokens`` from the run's byte-level BPE (loaded lazily inside the worker)."""

    name = "count_tokens"
    input_columns = ("text",)

    def __init__(self, tokenizer_path: str) -> None:
        self.tokenizer_path = tokenizer_path
        self._tokenizer: Any = None

    def output_fields(self) -> list[pa.Field]:
        return [pa.field("n_tokens", pa.int64())]

    def __call__(self, batch: pa.RecordBatch) -> StageResult:
        if self._tokenizer is None:
            from metamix.pipeline.tokenizer import load_tokenizer

            self._tokenizer = load_tokenizer(self.tokenizer_path)
        texts = batch.column("text").to_pylist()
        counts_list: list[int] = []
        # Encodings carry offsets and strings per token (~40 bytes each): encode in small
        # groups so their memory stays a few MB whatever the batch size.
        for start in range(0, len(texts), 64):
            group = self._tokenizer.encode_batch_fast(texts[start : start + 64],
                                                      add_special_tokens=False)
            counts_list.extend(len(e.ids) for e in group)
        counts = pa.array(counts_list, pa.int64())
        return StageResult(batch.append_column("n_tokens", counts))

    def __getstate__(self) -> dict[str, Any]:
        return {"tokenizer_path": self.tokenizer_path, "_tokenizer": None}


class ApplyScorer:
    """Appends one scorer family's columns; the scorer sees only the batch, nothing else."""

    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer
        self.name = f"score:{scorer.name}"
        self.input_columns = scorer.input_columns

    def output_fields(self) -> list[pa.Field]:
        return list(self.scorer.output_schema())

    def __call__(self, batch: pa.RecordBatch) -> StageResult:
        columns = self.scorer.score(batch)
        for f in self.scorer.output_schema():
            col = columns[f.name]
            if len(col) != batch.num_rows:
                raise RuntimeError(f"{self.name}: column {f.name} has {len(col)} rows, "
                                   f"batch has {batch.num_rows}")
            batch = batch.append_column(f, col.cast(f.type) if col.type != f.type else col)
        return StageResult(batch)
