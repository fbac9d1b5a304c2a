"""Raw records → canonical rows (id, text, domain, source), with bad rows quarantined.

Every record read ends up in exactly one place: the canonical batch or the quarantine,
each with a reason, so ``read = written + quarantined`` holds per shard.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from metamix.pipeline.config import InputConfig, PipelineConfig
from metamix.pipeline.fields import (
    CHECK_RECORDS,
    MISSING,
    KeptField,
    check_records,
    check_schema,
    get_path,
    kept_schema,
    unify,
)
from metamix.pipeline.readers import InputShard, Record, plan_shards, read_records, shard_schema

CANONICAL_SCHEMA = pa.schema(
    [("id", pa.string()), ("text", pa.string()), ("domain", pa.string()), ("source", pa.string())]
)


def content_id(text: str) -> str:
    """Stable id for sources without one: identical texts share it, so exact duplicates
    are caught by the duplicate-id check."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=10).hexdigest()


class Canonicalizer:
    """Validates and maps the records of one input shard; remembers ids it has seen.

    Rows carry the canonical columns, then the kept user fields (``kept``, typed for the
    whole run by ``inspect_inputs``)."""

    def __init__(self, inp: InputConfig, shard_path: str,
                 kept: Sequence[KeptField] = ()) -> None:
        self.inp = inp
        self.shard_path = shard_path
        self.kept = list(kept)
        self.schema = pa.schema([*CANONICAL_SCHEMA, *kept_schema(self.kept)])
        self.default_source = _stem(shard_path)
        self.path_domain = self._domain_from_path(shard_path)
        self.seen_ids: set[str] = set()

    def _domain_from_path(self, path: str) -> str | None:
        if self.inp.domain is not None:
            return self.inp.domain
        if self.inp.domain_from_path is None:
            return None
        match = re.search(self.inp.domain_from_path, Path(path).as_posix())
        return match.group("domain") if match else None

    def __call__(self, records: list[Record]) -> tuple[pa.RecordBatch, list[dict[str, Any]]]:
        columns: list[list[Any]] = [[] for _ in self.schema]
        bad: list[dict[str, Any]] = []
        for row, obj, reason, raw in records:
            if obj is None:
                bad.append({"row": row, "id": None, "reason": reason, "detail": raw})
                continue
            problem, values = self._canonical(obj)
            if problem is not None:
                bad.append({"row": row, "id": values, "reason": problem[0], "detail": problem[1]})
                continue
            assert isinstance(values, tuple)
            for column, value in zip(columns, values, strict=True):
                column.append(value)
        batch = pa.RecordBatch.from_arrays(
            [pa.array(c, f.type) for c, f in zip(columns, self.schema, strict=True)],
            schema=self.schema)
        return batch, bad

    def _canonical(self, obj: dict[str, Any]) -> tuple[tuple[str, str] | None, Any]:
        inp = self.inp
        text = _value(obj, inp.text_field)
        raw_id = _value(obj, inp.id_field) if inp.id_field else None
        shown_id = None if raw_id is None else str(raw_id)
        if text is None:
            return ("missing_text", f"no value for {inp.text_field!r}"), shown_id
        if not isinstance(text, str):
            return ("text_not_string", f"{type(text).__name__}: {str(text)[:200]}"), shown_id
        if not text.strip():
            return ("empty_text", repr(text[:200])), shown_id
        if len(text) * 4 > inp.max_doc_bytes:   # a UTF-8 char is at most 4 bytes
            size = len(text.encode("utf-8", "surrogatepass"))
            if size > inp.max_doc_bytes:
                return ("too_large", f"{size:,} bytes > input.max_doc_bytes "
                        f"{inp.max_doc_bytes:,}"), shown_id
        if inp.id_field:
            if raw_id is None or raw_id == "" or isinstance(raw_id, (dict, list, bool)):
                return ("missing_id", f"{inp.id_field!r} = {raw_id!r}"), None
            doc_id = str(raw_id)
        else:
            doc_id = content_id(text)
        if doc_id in self.seen_ids:
            return ("duplicate_id", "id seen earlier in this shard"), doc_id
        domain = self.path_domain
        if domain is None and inp.domain_field:
            value = _value(obj, inp.domain_field)
            domain = value if isinstance(value, str) and value else None
        if domain is None:
            return ("missing_domain", "no domain from field, path pattern or config"), doc_id
        source = _value(obj, inp.source_field) if inp.source_field else None
        if not isinstance(source, str) or not source:
            source = self.default_source
        kept = []
        for f in self.kept:
            value = get_path(obj, f.path)
            ok, converted = f.convert(value)
            if not ok:
                return ("kept_field_type", f"input.keep_fields.{f.name} ({f.path}): "
                        f"{str(value)[:100]!r} is not {f.type} like the first records "
                        "(convert it, or keep it as text)"), doc_id
            kept.append(converted)
        self.seen_ids.add(doc_id)
        return None, (doc_id, text, domain, source, *kept)


def _value(obj: dict[str, Any], path: str) -> Any:
    value = get_path(obj, path)
    return None if value is MISSING else value


def inspect_inputs(shards: Sequence[InputShard], inp: InputConfig, label: Any = str
                   ) -> list[KeptField]:
    """Check every field mapping on each input file before any work starts (the schema of
    a columnar file, the first records of a JSONL file) and settle one type per kept
    field; ``label`` turns a path into the name errors show."""
    seen: dict[str, tuple[pa.DataType, str]] = {}
    for path in dict.fromkeys(s.path for s in shards):
        shard = next(s for s in shards if s.path == path)
        name = label(path)
        schema = shard_schema(shard)
        if schema is None:
            types = check_records(name, inp, _first_objects(shard, inp))
        else:
            types = check_schema(name, inp, schema)
        for column, dtype in types.items():
            unify(column, seen, dtype, name)
    out = []
    for column, field_path in inp.kept_columns().items():
        dtype = seen.get(column, (pa.string(), ""))[0]
        out.append(KeptField(column, field_path, pa.string() if pa.types.is_null(dtype)
                             else dtype))
    return out


def _first_objects(shard: InputShard, inp: InputConfig) -> list[dict[str, Any]]:
    """Up to ``CHECK_RECORDS`` decodable records from the start of a JSONL file."""
    objs: list[dict[str, Any]] = []
    batches = read_records(shard, inp, CHECK_RECORDS)
    try:
        for n, records in enumerate(batches):
            objs.extend(obj for _, obj, _, _ in records if obj is not None)
            if len(objs) >= CHECK_RECORDS or n >= 9:
                break
    finally:
        batches.close()
    return objs[:CHECK_RECORDS]


@dataclass
class CanonicalRead:
    """Canonical batches of a whole input, with what was read and quarantined (by reason)."""

    batches: Iterator[pa.RecordBatch]
    read: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)


def read_canonical(cfg: PipelineConfig, inp: InputConfig, batch_rows: int = 4096
                   ) -> CanonicalRead:
    """Stream every canonical row of ``inp`` (small inputs such as evaluation targets; the
    score job ingests through shard tasks instead). Counts fill in as the batches are read;
    ids are unique within each file."""
    result = CanonicalRead(iter(()))

    def batches() -> Iterator[pa.RecordBatch]:
        shards = plan_shards(cfg, inp)
        kept = inspect_inputs(shards, inp)
        for shard in shards:
            canon = Canonicalizer(inp, shard.path, kept)
            for records in read_records(shard, inp, batch_rows):
                batch, bad = canon(records)
                result.read += len(records)
                result.quarantined.update(r["reason"] for r in bad)
                yield batch

    result.batches = batches()
    return result


def _stem(path: str) -> str:
    name = Path(path).name
    for suffix in (".gz", ".zst", ".jsonl", ".json", ".ndjson", ".parquet"):
        name = name.removesuffix(suffix)
    return name
