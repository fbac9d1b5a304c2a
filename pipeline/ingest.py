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

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

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
from metamix.pipeline.readers import (
    InputShard,
    Record,
    plan_shards,
    read_columns,
    read_records,
    records_of,
    shard_schema,
)

CANONICAL_SCHEMA = pa.schema(
    [("id", pa.string()), ("text", pa.string()), ("domain", pa.string()), ("source", pa.string())]
)


def content_id(text: str | bytes | memoryview) -> str:
    """Stable id for sources without one: identical texts share it, so exact duplicates
    are caught by the duplicate-id check."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    return hashlib.blake2b(data, digest_size=10).hexdigest()


#: A character ``str.strip()`` keeps: text matching it is not empty after stripping.
NOT_PYTHON_SPACE = "[^" + "".join(
    f"\\x{{{c:x}}}" for c in range(0x3001) if chr(c).isspace()) + "]"


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
        self.id_prefix: str = getattr(inp, "id_prefix", None) or ""
        self.seen_ids: set[str] = set()

    def read(self, shard: InputShard, batch_rows: int
             ) -> Iterator[tuple[int, pa.RecordBatch, list[dict[str, Any]]]]:
        """(records read, canonical batch, quarantined rows) for each batch of ``shard``."""
        if shard.kind == "jsonl":
            for records in read_records(shard, self.inp, batch_rows):
                yield len(records), *self(records)
        else:
            for first_row, columns in read_columns(shard, self.inp, batch_rows):
                yield columns.num_rows, *self.from_columns(columns, first_row)

    def _domain_from_path(self, path: str) -> str | None:
        if self.inp.domain is not None:
            return self.inp.domain
        if self.inp.domain_from_path is None:
            return None
        match = re.search(self.inp.domain_from_path, Path(path).as_posix())
        return match.group("domain") if match else None

    def from_columns(self, batch: pa.RecordBatch, first_row: int
                     ) -> tuple[pa.RecordBatch, list[dict[str, Any]]]:
        """``self(records_of(batch, first_row))``, the same rows and reasons, with the row
        checks done by Arrow kernels when every mapped field is a top-level column of a
        plain type (else record by record). Rows holding invalid UTF-8 (Parquet does not
        check its string columns) are quarantined as ``undecodable_bytes``."""
        if undecodable := _undecodable_rows(batch):
            return self._around(batch, first_row, undecodable)
        fields = self._columnar_fields(batch.schema)
        if fields is None:
            return self(records_of(batch, first_row))
        inp, n = self.inp, batch.num_rows
        text = _as_string(batch.column(inp.text_field))
        good = _true(pc.and_kleene(pc.less_equal(pc.binary_length(text), inp.max_doc_bytes),
                                   pc.match_substring_regex(text, NOT_PYTHON_SPACE)))
        id_column = None
        if inp.id_field:
            id_column = _as_string(batch.column(inp.id_field))
            good &= _true(pc.greater(pc.binary_length(id_column), 0))
            if self.id_prefix:
                id_column = pc.binary_join_element_wise(
                    pa.scalar(self.id_prefix, pa.string()), id_column, "")
            ids: list[str | None] = id_column.to_pylist()
        else:
            ids = [None if i is None else self.id_prefix + i
                   for i in _content_ids(text, good)]
        domain = None
        if self.path_domain is None:
            domain = _as_string(batch.column(inp.domain_field))
            good &= _true(pc.greater(pc.binary_length(domain), 0))
        keep: list[int] = []
        bad: list[dict[str, Any]] = []
        added: list[str] = []
        for i in range(n):
            doc_id = ids[i]
            if not good[i]:
                problem, shown = self._canonical(batch.slice(i, 1).to_pylist()[0])
                if problem is None:  # a check above is stricter than the row path's
                    self.seen_ids.difference_update([*added, shown[0]])
                    return self(records_of(batch, first_row))
                bad.append({"row": first_row + i, "id": shown, "reason": problem[0],
                            "detail": problem[1]})
            elif doc_id in self.seen_ids:
                bad.append({"row": first_row + i, "id": doc_id, "reason": "duplicate_id",
                            "detail": "id seen earlier in this shard"})
            else:
                self.seen_ids.add(doc_id)  # type: ignore[arg-type]
                added.append(doc_id)       # type: ignore[arg-type]
                keep.append(i)
        return self._columnar_batch(batch, keep, ids, id_column, text, domain, *fields), bad

    def _around(self, batch: pa.RecordBatch, first_row: int, undecodable: dict[int, str]
                ) -> tuple[pa.RecordBatch, list[dict[str, Any]]]:
        """``from_columns`` of the runs of rows between the undecodable ones, which are
        quarantined (each run keeps its input row numbers)."""
        parts: list[pa.RecordBatch] = []
        bad: list[dict[str, Any]] = []
        start = 0
        for stop in [*sorted(undecodable), batch.num_rows]:
            if stop > start:
                part, part_bad = self.from_columns(batch.slice(start, stop - start),
                                                   first_row + start)
                parts.append(part)
                bad.extend(part_bad)
            if stop < batch.num_rows:
                bad.append({"row": first_row + stop, "id": None,
                            "reason": "undecodable_bytes", "detail": undecodable[stop]})
            start = stop + 1
        if not parts:
            return pa.RecordBatch.from_pylist([], schema=self.schema), bad
        return pa.concat_batches(parts), bad

    def _columnar_fields(self, schema: pa.Schema) -> tuple[str | None, list[str]] | None:
        """(source column or None, kept fields' columns), or None when some mapped field
        needs the record path (nested, absent or not plain text)."""
        inp = self.inp

        def text_column(name: str | None) -> bool:
            return name is not None and name in schema.names and _is_text(schema.field(name))

        if not text_column(inp.text_field):
            return None
        if inp.id_field and not text_column(inp.id_field):
            return None
        if self.path_domain is None and not text_column(inp.domain_field):
            return None
        source = inp.source_field
        if source and source not in schema.names and source.split(".")[0] in schema.names:
            return None  # a nested path
        if any(f.path is not None and (f.path not in schema.names
                                       or schema.field(f.path).type != f.type)
               for f in self.kept):
            return None
        # a source that is absent or not text is the file's stem on every row
        return (source if text_column(source) else None), [f.path for f in self.kept]

    def _columnar_batch(self, batch: pa.RecordBatch, keep: list[int], ids: list[str | None],
                        id_column: pa.Array | None, text: pa.Array, domain: pa.Array | None,
                        source_field: str | None, kept_paths: list[str | None]
                        ) -> pa.RecordBatch:
        """The kept rows' canonical columns: ``id_column`` when the input has ids, else
        the content ids in ``ids``."""
        n = len(keep)
        take = None if n == batch.num_rows else pa.array(keep, pa.int64())

        def rows(array: pa.Array) -> pa.Array:
            return array if take is None else array.take(take)

        id_array = (rows(id_column) if id_column is not None
                    else pa.array([ids[i] for i in keep], pa.string()))
        domain_array = (pa.array([self.path_domain] * n, pa.string()) if domain is None
                        else rows(domain))
        if source_field is None:
            source_array = pa.array([self.default_source] * n, pa.string())
        else:
            given = rows(_as_string(batch.column(source_field)))
            source_array = pc.if_else(_true(pc.greater(pc.binary_length(given), 0)), given,
                                      pa.scalar(self.default_source, pa.string()))
        kept = [pa.nulls(n, f.type) if path is None else rows(batch.column(path))
                for f, path in zip(self.kept, kept_paths, strict=True)]
        return pa.RecordBatch.from_arrays(
            [id_array, rows(text), domain_array, source_array, *kept], schema=self.schema)

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
                return ("too_large", f"{size:,} bytes > {inp.key}.max_doc_bytes "
                        f"{inp.max_doc_bytes:,}"), shown_id
        if inp.id_field:
            if raw_id is None or raw_id == "" or isinstance(raw_id, (dict, list, bool)):
                return ("missing_id", f"{inp.id_field!r} = {raw_id!r}"), None
            doc_id = self.id_prefix + str(raw_id)
        else:
            doc_id = self.id_prefix + content_id(text)
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
            value = None if f.path is None else get_path(obj, f.path)
            ok, converted = f.convert(value)
            if not ok:
                return ("kept_field_type", f"{inp.key}.keep_fields.{f.name} ({f.path}): "
                        f"{str(value)[:100]!r} is not {f.type} like the first records "
                        "(convert it, or keep it as text)"), doc_id
            kept.append(converted)
        self.seen_ids.add(doc_id)
        return None, (doc_id, text, domain, source, *kept)


def _undecodable_rows(batch: pa.RecordBatch) -> dict[int, str]:
    """{row: which column holds invalid UTF-8, and its first bytes} (empty when the batch
    is valid: one full validation, the row-by-row search only for a bad batch)."""
    try:
        batch.validate(full=True)
        return {}
    except pa.ArrowInvalid:
        pass
    found: dict[int, str] = {}
    for i in range(batch.num_rows):
        for name, column in zip(batch.schema.names, batch.slice(i, 1).columns, strict=True):
            try:
                column.validate(full=True)
            except pa.ArrowInvalid:
                raw = (column.view(pa.large_binary() if pa.types.is_large_string(column.type)
                                   else pa.binary())[0].as_py()
                       if _is_text(pa.field(name, column.type)) else None)
                shown = f": {raw[:200]!r}" if isinstance(raw, bytes) else ""
                found[i] = f"column {name!r} is not valid UTF-8{shown}"
                break
    return found


def _is_text(f: pa.Field) -> bool:
    return pa.types.is_string(f.type) or pa.types.is_large_string(f.type)


def _as_string(array: pa.Array) -> pa.Array:
    return array if array.type == pa.string() else array.cast(pa.string())


def _true(mask: pa.Array) -> np.ndarray:
    """A boolean Arrow array as numpy, null as False."""
    return pc.fill_null(mask, False).to_numpy(zero_copy_only=False)


def _content_ids(text: pa.Array, good: np.ndarray) -> list[str | None]:
    """``content_id`` of each good row, hashed from the UTF-8 bytes in place."""
    offsets = np.frombuffer(text.buffers()[1], np.int32)[text.offset:text.offset + len(text) + 1]
    data = memoryview(text.buffers()[2] or b"")
    return [content_id(data[offsets[i]:offsets[i + 1]]) if good[i] else None
            for i in range(len(text))]


def _value(obj: dict[str, Any], path: str) -> Any:
    value = get_path(obj, path)
    return None if value is MISSING else value


def inspect_inputs(shards: Sequence[InputShard], inp: InputConfig, label: Any = str
                   ) -> list[KeptField]:
    """Check every field mapping on each input file before any work starts (the schema of
    a columnar file, the first records of a JSONL file) and settle one type per kept
    field; ``label`` turns a path into the name errors show."""
    return inspect_sources([shards], [inp], [label])[0]


def inspect_sources(shards: Sequence[Sequence[InputShard]], sources: Sequence[InputConfig],
                    labels: Sequence[Any]) -> list[list[KeptField]]:
    """``inspect_inputs`` of several sources at once: each source's kept fields, as one
    list of columns for all (the union, in order of first appearance; a column another
    source keeps has no path here and is null), each column of one type everywhere."""
    seen: dict[str, tuple[pa.DataType, str]] = {}
    for source_shards, inp, label in zip(shards, sources, labels, strict=True):
        for path in dict.fromkeys(s.path for s in source_shards):
            shard = next(s for s in source_shards if s.path == path)
            name = label(path)
            schema = shard_schema(shard)
            if schema is None:
                types = check_records(name, inp, _first_objects(shard, inp))
            else:
                types = check_schema(name, inp, schema)
            for column, dtype in types.items():
                unify(column, seen, dtype, name, inp.key)
    columns = list(dict.fromkeys(c for inp in sources for c in inp.kept_columns()))
    out = []
    for inp in sources:
        paths = inp.kept_columns()
        fields = []
        for column in columns:
            dtype = seen.get(column, (pa.string(), ""))[0]
            fields.append(KeptField(column, paths.get(column),
                                    pa.string() if pa.types.is_null(dtype) else dtype))
        out.append(fields)
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
            for n_read, batch, bad in canon.read(shard, batch_rows):
                result.read += n_read
                result.quarantined.update(r["reason"] for r in bad)
                yield batch

    result.batches = batches()
    return result


def _stem(path: str) -> str:
    name = Path(path).name
    for suffix in (".gz", ".zst", ".jsonl", ".json", ".ndjson", ".parquet"):
        name = name.removesuffix(suffix)
    return name
