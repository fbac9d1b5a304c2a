"""Which scored columns Meta-rater can weight: the numeric ones that are not bookkeeping."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

RESERVED_COLUMNS = ("id", "text", "domain", "source", "n_tokens")


def numeric_columns(paths: list[Path]) -> list[str]:
    """Numeric (int, float, decimal, bool) columns in any shard, minus the reserved ones."""
    found: dict[str, None] = {}
    for path in paths:
        for f in pq.read_schema(path):
            t = f.type
            numeric = (pa.types.is_integer(t) or pa.types.is_floating(t)
                       or pa.types.is_decimal(t) or pa.types.is_boolean(t))
            if numeric and f.name not in RESERVED_COLUMNS:
                found.setdefault(f.name)
    return sorted(found)
