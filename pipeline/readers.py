"""Input formats → raw records, one input unit ("shard") at a time, streamed.

Readers only decode; deciding whether a record is acceptable is `metamix.pipeline.ingest`'s job.
A record is ``(row, obj, error)``: the row number in its input, the decoded mapping (or
None), and a quarantine reason when decoding itself failed (bad JSON, bad bytes).
"""

from __future__ import annotations

import fnmatch
import glob
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from metamix.base.errors import UserError
from metamix.base.storage import arrow_source, as_path, check_uri, is_remote, is_uri, open_binary
from metamix.pipeline.config import InputConfig, PipelineConfig
from metamix.pipeline.fields import top_columns
from metamix.pipeline.streams import TruncatedInput, lines, raw_chunks

Record = tuple[int, dict[str, Any] | None, str | None, str | None]  # row, obj, reason, raw

JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson", ".jsonl.gz", ".json.gz", ".jsonl.zst",
                  ".json.zst", ".ndjson.gz", ".ndjson.zst")


@dataclass(frozen=True)
class InputShard:
    """One unit of ingest work: a file, or a contiguous slice of a `datasets` dataset."""

    kind: str  # "jsonl" | "parquet" | "hf_disk" | "hf_json" | "hf_parquet"
    path: str
    start: int = 0
    stop: int | None = None

    @property
    def label(self) -> str:
        return self.path if self.stop is None else f"{self.path}[{self.start}:{self.stop}]"

    def label_under(self, base: Path) -> str:
        """The label with the path relative to ``base`` (the folder relative config paths
        resolve against): manifests and quarantine rows then read the same wherever a
        checkout lives, for a config that names its inputs relatively."""
        path = os.path.relpath(self.path, base)
        return path if self.stop is None else f"{path}[{self.start}:{self.stop}]"


def _glob(pattern: str, key: str = "input") -> list[Path]:
    """Local glob, or an object-store one (``s3://bucket/prefix/*.jsonl``)."""
    if not is_uri(pattern):
        return [Path(m) for m in glob.glob(pattern, recursive=True)]
    import fsspec

    check_uri(pattern)  # s3://b: one line, not "nothing matches" or s3fs's EINVAL
    try:
        fs, path = fsspec.core.url_to_fs(pattern, use_listings_cache=False)
        matches = fs.glob(path) if glob.has_magic(path) else (
            [path] if fs.exists(path) else [])
    except (ImportError, ValueError) as exc:
        raise UserError(f"{key}.paths: {pattern}: {exc} (pip install 'metamix[cloud]')"
                        ) from None
    except OSError as exc:
        raise UserError(f"{key}.paths: {pattern}: cannot list: {exc}") from None
    return [as_path(fs.unstrip_protocol(m)) for m in matches]


def expand_paths(cfg: PipelineConfig, inp: InputConfig) -> list[Path]:
    """Globs and directories → sorted files, so shard order (and ids' first owner) is stable.

    With ``format: auto`` a folder written by ``Dataset.save_to_disk`` is one input (its
    ``dataset_info.json`` and ``state.json`` are metadata, not JSON documents)."""
    found: set[Path] = set()
    for pattern in inp.paths:
        _refuse_outputs_in(str(cfg.resolve(pattern)), pattern, cfg, inp.key)
        matches = _glob(str(cfg.resolve(pattern)), inp.key)
        if not matches:
            raise UserError(f"{inp.key}.paths: nothing matches {pattern!r}")
        before = len(found)
        for m in matches:
            if m.is_dir() and inp.format != "hf_disk":
                found.update(_walk(m, inp.format == "auto", inp.key))
            else:
                found.add(m)
        if len(found) == before and all(m.is_dir() for m in matches) \
                and inp.format != "hf_disk":
            raise UserError(f"{inp.key}.paths: {pattern!r} holds no .jsonl/.json/.ndjson (plain, "
                            ".gz, .zst) or .parquet files")
    return _once_each(found)


def _once_each(paths: set[Path]) -> list[Path]:
    """Sorted, each real file once: a ``**`` glob through a folder symlink loop (or two
    links to one file) finds the same file under many names; the first name is kept."""
    seen: set[str] = set()
    out = []
    for path in sorted(paths, key=str):
        real = str(path) if is_remote(path) else os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            out.append(path)
    return out


def _refuse_outputs_in(resolved: str, pattern: str, cfg: PipelineConfig,
                       key: str = "input") -> None:
    """Stop before any work when ``pattern`` can reach this run's folder or the shared
    ``_cache`` (out_dir inside the input's folder): a rerun would ingest its own outputs.
    A folder, or a glob with ``**``, reaches everything under it; another glob only what
    its components match, level by level (``in/*.jsonl`` never reaches ``in/out/``)."""
    if is_uri(resolved) or is_uri(cfg.out_dir):
        return
    parts = Path(resolved).parts
    magic = next((i for i, part in enumerate(parts) if glob.has_magic(part)), len(parts))
    base = Path(*parts[:magic]).resolve()
    rest = parts[magic:]
    if not rest and not base.is_dir():
        return   # one file
    for target in (cfg.run_dir, cfg.resolve(cfg.out_dir) / "_cache"):
        target = target.resolve()
        if not target.is_relative_to(base):
            continue
        inside = target.relative_to(base).parts
        if "**" in rest or all(fnmatch.fnmatchcase(t, c) for t, c in zip(inside, rest,
                                                                         strict=False)):
            raise UserError(f"{key}.paths: {pattern!r} reaches {target}, where this run "
                            "writes (out_dir is inside the input's folder): its outputs "
                            "would be read back as input; move out_dir out of "
                            f"{base} or narrow the pattern")


def is_saved_dataset(path: Path) -> bool:
    """A folder written by ``Dataset.save_to_disk``."""
    return (path / "dataset_info.json").is_file() and (path / "state.json").is_file()


def _walk(root: Path, detect_datasets: bool, key: str = "input") -> list[Path]:
    """Input files under ``root``; saved datasets are taken whole, not walked into."""
    if is_remote(root):  # a prefix on an object store: its data files (no saved datasets)
        return [p for p in root.rglob("*") if _known_suffix(p) and p.is_file()]
    if detect_datasets and (root / "dataset_dict.json").is_file():
        splits = ", ".join(sorted(p.name for p in root.iterdir() if is_saved_dataset(p)))
        raise UserError(f"{root}: holds a DatasetDict (splits: {splits}); point {key}.paths "
                        "at one split's folder")
    if detect_datasets and is_saved_dataset(root):
        return [root]
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if detect_datasets and here != root and (is_saved_dataset(here) or
                                                 (here / "dataset_dict.json").is_file()):
            out.extend(_walk(here, detect_datasets, key))
            dirnames.clear()
            continue
        out.extend(here / f for f in filenames if _known_suffix(here / f))
    return out


def _known_suffix(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(JSONL_SUFFIXES) or name.endswith(".parquet")


def _detect_kind(path: Path, fmt: str, key: str = "input") -> str:
    if fmt != "auto":
        return fmt
    name = path.name.lower()
    if path.is_dir() and is_saved_dataset(path):
        return "hf_disk"
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    raise UserError(f"{path}: cannot tell the format from the name; set {key}.format")


def plan_shards(cfg: PipelineConfig, inp: InputConfig) -> list[InputShard]:
    shards: list[InputShard] = []
    for path in expand_paths(cfg, inp):
        kind = _detect_kind(path, inp.format, inp.key)
        if kind in ("jsonl", "parquet"):
            shards.append(InputShard(kind, str(path)))
            continue
        if is_remote(path):
            raise UserError(f"{path}: {kind} inputs must be local folders (object stores "
                            "take .jsonl/.parquet files)")
        n_rows = len(_load_hf(kind, str(path)))
        for start in range(0, max(n_rows, 1), inp.rows_per_shard):
            shards.append(InputShard(kind, str(path), start, min(start + inp.rows_per_shard,
                                                                 n_rows)))
    return shards


def read_records(shard: InputShard, inp: InputConfig, batch_rows: int = 4096
                 ) -> Iterator[list[Record]]:
    """Yield lists of records; memory stays bounded by ``batch_rows``."""
    if shard.kind == "jsonl":
        yield from _read_jsonl(as_path(shard.path), inp, batch_rows)
    else:
        yield from _read_columnar(shard, inp, batch_rows)


def _read_jsonl(path: Path, inp: InputConfig, batch_rows: int) -> Iterator[list[Record]]:
    out: list[Record] = []
    row = 0
    try:
        with open_binary(path) as fh:
            for line in lines(raw_chunks(path, fh)):
                out.append(_decode_json_line(row, line))
                row += 1
                if len(out) >= batch_rows:
                    yield out
                    out = []
    except TruncatedInput as exc:
        if inp.on_truncated != "quarantine":
            raise UserError(f"{path}: {exc} at byte {exc.offset}; the file is truncated or "
                            f"corrupt (set {inp.key}.on_truncated: quarantine to keep the rows "
                            "before it and count the rest as one truncated_input record)"
                            ) from None
        out.append((row, None, "truncated_input", f"{exc} at byte {exc.offset}: the rest of "
                    "the file could not be read"))
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc}") from None
    if out:
        yield out


def _decode_json_line(row: int, line: bytes) -> Record:
    stripped = line.strip()
    if not stripped:
        return (row, None, "empty_line", "")
    try:
        stripped.decode("utf-8")
    except UnicodeDecodeError as exc:
        return (row, None, "undecodable_bytes", f"{exc}; {stripped[:200]!r}")
    try:
        obj = orjson.loads(stripped)
    except orjson.JSONDecodeError:
        return (row, None, "invalid_json", stripped[:1000].decode("utf-8", "replace"))
    if not isinstance(obj, dict):
        return (row, None, "not_an_object", stripped[:1000].decode("utf-8", "replace"))
    return (row, obj, None, None)


def read_columns(shard: InputShard, inp: InputConfig, batch_rows: int = 4096
                 ) -> Iterator[tuple[int, pa.RecordBatch]]:
    """Batches of a columnar input (Parquet, datasets) holding the mapped columns, each with
    the input row number of its first row; ingest checks them with Arrow kernels instead of
    building a Python dict per record."""
    if shard.kind == "parquet":
        if is_empty_file(as_path(shard.path)):
            return
        pf = parquet_file(as_path(shard.path))
        columns = top_columns(inp, pf.schema_arrow.names)
        row = 0
        batches = pf.iter_batches(batch_size=batch_rows, columns=columns)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except (OSError, pa.ArrowException) as exc:   # a corrupt page, a bad length
                raise UserError(f"{shard.path}: {_row_group_at(pf, row, columns)}: cannot read: "
                                f"{exc}; the file is corrupt") from None
            yield row, batch
            row += batch.num_rows
    ds = _load_hf(shard.kind, shard.path)
    rows = ds.select_columns(top_columns(inp, ds.column_names)).with_format("arrow")
    stop = shard.stop if shard.stop is not None else len(ds)
    for start in range(shard.start, stop, batch_rows):
        table = rows[start : min(start + batch_rows, stop)].combine_chunks()
        yield start, pa.RecordBatch.from_struct_array(table.to_struct_array().combine_chunks())


def _row_group_at(pf: pq.ParquetFile, row: int, columns: list[str] | None) -> str:
    """"row group G of N (rows a-b)": the first at or after input row ``row`` that fails
    to read on its own (the batch reader reads ahead, so its position does not say)."""
    start = 0
    n = pf.metadata.num_row_groups
    for g in range(n):
        rows = pf.metadata.row_group(g).num_rows
        if start + rows > row:
            try:
                pf.read_row_group(g, columns=columns)
            except (OSError, pa.ArrowException):
                return f"row group {g} of {n} (rows {start}-{start + rows - 1})"
        start += rows
    return f"after row {row}"


def records_of(batch: pa.RecordBatch, first_row: int) -> list[Record]:
    return [(first_row + i, obj, None, None) for i, obj in enumerate(batch.to_pylist())]


def _read_columnar(shard: InputShard, inp: InputConfig, batch_rows: int
                   ) -> Iterator[list[Record]]:
    for first_row, batch in read_columns(shard, inp, batch_rows):
        yield records_of(batch, first_row)


def is_empty_file(path: Path) -> bool:
    """A 0-byte file: no rows, whatever its format (an empty ``.jsonl`` has none either, and
    a writer that created a Parquet file and wrote nothing meant none), so such an input
    reads as a shard of 0 rows rather than stopping the run."""
    return path.stat().st_size == 0


def parquet_file(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(arrow_source(path))
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise UserError(f"{path}: not a readable Parquet file: {exc}") from None


def shard_schema(shard: InputShard) -> pa.Schema | None:
    """The Arrow schema of a columnar input (None for JSONL, whose keys vary by record)."""
    if shard.kind == "jsonl":
        return None
    if shard.kind == "parquet":
        path = as_path(shard.path)
        return None if is_empty_file(path) else parquet_file(path).schema_arrow
    return _load_hf(shard.kind, shard.path).data.schema


def _load_hf(kind: str, path: str) -> Any:
    import datasets  # heavy import: only when a datasets input is used

    try:
        if kind == "hf_disk":
            ds = datasets.load_from_disk(path)
        else:
            ds = datasets.load_dataset(kind.removeprefix("hf_"), data_files=path, split="train")
    except Exception as exc:  # datasets wraps many error types
        raise UserError(f"{path}: cannot load as {kind}: {exc}") from None
    if isinstance(ds, datasets.DatasetDict):
        raise UserError(f"{path}: is a DatasetDict; point input.paths at one split's folder")
    return ds
