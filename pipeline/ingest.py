"""Raw records → canonical rows (id, text, domain, source), with bad rows quarantined.

Every record read ends up in exactly one place: the canonical batch or the quarantine,
each with a reason, so ``read = written + quarantined`` holds per shard.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from metamix.pipeline.config import InputConfig, PipelineConfig
from metamix.pipeline.readers import Record, plan_shards, read_records

CANONICAL_SCHEMA = pa.schema(
    [("id", pa.string()), ("text", pa.string()), ("domain", pa.string()), ("source", pa.string())]
)


def content_id(text: str) -> str:
    """Stable id for sources without one: identical texts share it, so exact duplicates
    are caught by the duplicate-id check."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=10).hexdigest()


class Canonicalizer:
    """Validates and maps the records of one input shard; remembers ids it has seen."""

    def __init__(self, inp: InputConfig, shard_path: str) -> None:
        self.inp = inp
        self.shard_path = shard_path
        self.default_source = _stem(shard_path)
        self.path_domain = self._domain_from_path(shard_path)
        self.seen_ids: set[str] = set()
        self.rows_with_text_key = 0

    def _domain_from_path(self, path: str) -> str | None:
        if self.inp.domain is not None:
            return self.inp.domain
        if self.inp.domain_from_path is None:
            return None
        match = re.search(self.inp.domain_from_path, Path(path).as_posix())
        return match.group("domain") if match else None

    def __call__(self, records: list[Record]) -> tuple[pa.RecordBatch, list[dict[str, Any]]]:
        ids: list[str] = []
        texts: list[str] = []
        domains: list[str] = []
        sources: list[str] = []
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
            ids.append(values[0])
            texts.append(values[1])
            domains.append(values[2])
            sources.append(values[3])
        batch = pa.RecordBatch.from_arrays(
            [pa.array(ids, pa.string()), pa.array(texts, pa.string()),
             pa.array(domains, pa.string()), pa.array(sources, pa.string())],
            schema=CANONICAL_SCHEMA,
        )
        return batch, bad

    def _canonical(self, obj: dict[str, Any]) -> tuple[tuple[str, str] | None, Any]:
        inp = self.inp
        if inp.text_field in obj:
            self.rows_with_text_key += 1
        text = obj.get(inp.text_field)
        raw_id = obj.get(inp.id_field) if inp.id_field else None
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
            value = obj.get(inp.domain_field)
            domain = value if isinstance(value, str) and value else None
        if domain is None:
            return ("missing_domain", "no domain from field, path pattern or config"), doc_id
        source = obj.get(inp.source_field) if inp.source_field else None
        if not isinstance(source, str) or not source:
            source = self.default_source
        self.seen_ids.add(doc_id)
        return None, (doc_id, text, domain, source)


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
        for shard in plan_shards(cfg, inp):
            canon = Canonicalizer(inp, shard.path)
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
