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

from metamix.base.hashing import json_hash
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


def reuse_warm(stages: list[BatchStage], cache: dict[str, Any] | None) -> list[BatchStage]:
    """Swap each stage that has a ``reuse_key`` for the equal instance already in ``cache``
    (one that has loaded its models), adding the new ones; ``cache=None`` changes nothing.

    Tasks arrive pickled, so without this every shard would reload every model."""
    if cache is None:
        return stages
    out = []
    for stage in stages:
        key = getattr(stage, "reuse_key", None)
        out.append(stage if key is None else cache.setdefault(f"stage:{key()}", stage))
    return out


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
    """Adds ``n_tokens`` from the run's byte-level BPE, the one encoding pass of a document.

    With ``keep_ids`` the ids themselves ride along in the internal ``TOKEN_IDS_COLUMN``
    (tagged with the tokenizer's sha256), so later stages reuse them instead of encoding
    again: the n-gram scorer when its model uses the same tokenizer, and the shard writer,
    which stores them for the proxy trainers' token cache. The encoder loads lazily inside
    the worker.
    """

    name = "count_tokens"
    input_columns = ("text",)

    def __init__(self, tokenizer_path: str, keep_ids: bool = False,
                 check_record: str | None = None) -> None:
        """``check_record``: where a passed check of the fast encoder against
        ``tokenizers`` is remembered (``metamix.base.bpe.BpeEncoder``); outside the run's
        folder, whose files are its outputs."""
        self.tokenizer_path = tokenizer_path
        self.keep_ids = keep_ids
        self.check_record = check_record
        self._encoder: Any = None
        self._ids_field: pa.Field | None = None

    def output_fields(self) -> list[pa.Field]:
        return [pa.field("n_tokens", pa.int64())]

    def _load(self) -> Any:
        if self._encoder is None:
            from metamix.base.bpe import TOKEN_IDS_COLUMN, TOKENIZER_SHA256_KEY, load_encoder
            from metamix.base.hashing import file_sha256
            from metamix.base.storage import local_copy

            path = local_copy(self.tokenizer_path)  # the encoders open local files only
            self._encoder = load_encoder(path, self.check_record)
            value_type = pa.from_numpy_dtype(self._encoder.dtype)
            self._ids_field = pa.field(
                TOKEN_IDS_COLUMN, pa.large_list(value_type),
                metadata={TOKENIZER_SHA256_KEY: file_sha256(path)})
        return self._encoder

    def __call__(self, batch: pa.RecordBatch) -> StageResult:
        encoder = self._load()
        column = batch.column("text")
        texts = column.to_pylist()
        if column.null_count:
            texts = [t or "" for t in texts]
        ids, offsets = encoder.encode(texts)
        batch = batch.append_column("n_tokens", pa.array(np.diff(offsets)))
        if self.keep_ids:
            assert self._ids_field is not None
            batch = batch.append_column(self._ids_field, pa.LargeListArray.from_arrays(
                pa.array(offsets), pa.array(ids)))
        return StageResult(batch)

    def __getstate__(self) -> dict[str, Any]:
        return {"tokenizer_path": self.tokenizer_path, "keep_ids": self.keep_ids,
                "check_record": self.check_record, "_encoder": None, "_ids_field": None}

    def reuse_key(self) -> str:
        return json_hash([self.name, self.tokenizer_path, self.keep_ids])


class ApplyScorer:
    """Appends one scorer family's columns; the scorer sees only the batch, nothing else."""

    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer
        self.name = f"score:{scorer.name}"
        self.input_columns = scorer.input_columns

    def output_fields(self) -> list[pa.Field]:
        return list(self.scorer.output_schema())

    def reuse_key(self) -> str:
        """Equal for equal scorers: a pool worker keeps one warm instance per key."""
        cls = type(self.scorer)
        return json_hash([self.name, cls.__module__, cls.__qualname__, self.scorer.params()])

    def __call__(self, batch: pa.RecordBatch) -> StageResult:
        columns = self.scorer.score(batch)
        for f in self.scorer.output_schema():
            col = columns[f.name]
            if len(col) != batch.num_rows:
                raise RuntimeError(f"{self.name}: column {f.name} has {len(col)} rows, "
                                   f"batch has {batch.num_rows}")
            batch = batch.append_column(f, col.cast(f.type) if col.type != f.type else col)
        return StageResult(batch)
