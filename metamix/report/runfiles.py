"""Reading a run folder for the report: tolerant JSON, shard lists and deterministic samples.

The report runs after any subset of the pipeline, so every reader returns ``None`` (or an
empty frame) for what is missing and the section that needed it is skipped with a note;
only a file that exists but cannot be parsed is an error the user must see.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from metamix.base.errors import UserError

#: Canonical columns of a scored shard that are not quality scores.
CANONICAL = ("id", "text", "domain", "source", "n_tokens")
DROP_REASON_SUFFIX = "_drop_reason"


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object at ``path``, or None when the file does not exist."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: cannot read JSON ({exc})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object")
    return data


def read_table(path: Path, columns: list[str] | None = None) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as fh:  # one handle: a live writer may replace the file
            return pq.read_table(fh, columns=columns).to_pandas()
    except Exception as exc:  # noqa: BLE001 - any Arrow/IO failure is the same user problem
        raise UserError(f"{path}: cannot read Parquet ({type(exc).__name__}: "
                        f"{str(exc)[:200]})") from None


def shard_paths(stage_dir: Path) -> list[Path]:
    """Data shards of a stage folder (``part-*.parquet`` or ``<domain>.parquet``), sorted."""
    if not stage_dir.is_dir():
        return []
    return sorted(p for p in stage_dir.glob("*.parquet") if not p.name.startswith("."))


def score_columns(path: Path) -> tuple[list[str], list[str]]:
    """(numeric score columns, drop-reason columns) of a scored shard, in schema order."""
    import pyarrow as pa

    schema = pq.read_schema(path)
    numeric, reasons = [], []
    for field in schema:
        if field.name in CANONICAL:
            continue
        if field.name.endswith(DROP_REASON_SUFFIX):
            reasons.append(field.name)
        elif (pa.types.is_integer(field.type) or pa.types.is_floating(field.type)
              or pa.types.is_boolean(field.type)):
            numeric.append(field.name)
    return numeric, reasons


def shards_view(paths: list[Path], name: str = "shards") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the shards as view ``name`` (plus ``filename`` and
    ``file_row_number``, so a few rows can be fetched back without scanning the text)."""
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    con.read_parquet([str(p) for p in paths], union_by_name=True, filename=True,
                     file_row_number=True).create_view(name)
    return con


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _numeric(column: str) -> bool:
    return column not in ("id", "domain", "source", "text") and not column.endswith(
        DROP_REASON_SUFFIX)


def sample_rows(paths: list[Path], columns: list[str], n: int, seed: int) -> pd.DataFrame:
    """Up to ``n`` rows of ``columns``: all rows when the shards hold no more, else the rows
    with the smallest md5(id:seed) — the same rows for the same ids and seed, whatever the
    shard layout or thread count. Ordered by id, so sums over the sample are reproducible.
    Numeric columns come back as float64 (booleans as 0/1)."""
    columns = ["id", *(c for c in columns if c != "id")]
    if not paths:
        return pd.DataFrame(columns=columns)
    select = ", ".join(f"CAST({quote(c)} AS DOUBLE) AS {quote(c)}" if _numeric(c)
                       else quote(c) for c in columns)
    con = shards_view(paths)
    if count_rows(paths) <= n:
        query = f"SELECT {select} FROM shards ORDER BY id"
    else:
        query = (f"SELECT * FROM (SELECT {select} FROM shards ORDER BY "
                 f"md5(CAST(id AS VARCHAR) || ':{int(seed)}'), id LIMIT {int(n)}) ORDER BY id")
    return con.execute(query).df()


def count_rows(paths: list[Path]) -> int:
    return sum(pq.ParquetFile(p).metadata.num_rows for p in paths)


def read_rows_text(path: Path, rows: list[int], chars: int) -> dict[int, str]:
    """The first ``chars`` characters of the text of a few rows, reading only the row groups
    that hold them (the text column is most of a corpus's bytes)."""
    pf = pq.ParquetFile(path)
    starts = np.cumsum([0] + [pf.metadata.row_group(i).num_rows
                              for i in range(pf.metadata.num_row_groups)])
    out: dict[int, str] = {}
    for group in sorted({int(np.searchsorted(starts, r, side="right") - 1) for r in rows}):
        texts = pf.read_row_group(group, columns=["text"]).column("text").to_pylist()
        for r in rows:
            if starts[group] <= r < starts[group + 1]:
                out[r] = (texts[r - starts[group]] or "")[:chars]
    return out
