"""Which documents can ship: the one definition ``select`` and the mixture step share.

A document is *eligible* when ``select.where`` holds for it, the run's dedup pass kept it
(unless ``select.drop_duplicates`` is false) and no filter of ``select.hard_filters`` dropped
it: exactly the rows ``SelectionEngine`` ranks (``drop_reason IS NULL``). ``select`` cuts
from them, and ``metamix mix`` trains its data experts and proxy runs on them and caps each
domain's weight by their tokens, so the mixture it chooses is one ``select`` can fill.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from metamix.base.storage import as_path
from metamix.pipeline.selection.config import SelectConfig
from metamix.pipeline.selection.engine import SelectionEngine, connect, register_object_stores
from metamix.pipeline.selection.files import Normalization


@dataclass(frozen=True)
class Eligibility:
    """The parts of ``select:`` that decide eligibility (no select section: dedup only)."""

    hard_filters: tuple[str, ...] = ()
    where: str | None = None
    drop_duplicates: bool = True

    @classmethod
    def of(cls, cfg: SelectConfig | None) -> Eligibility:
        if cfg is None:
            return cls()
        return cls(tuple(cfg.hard_filters), cfg.where, cfg.drop_duplicates)


def duplicate_paths(scored_paths: Sequence[Path]) -> list[Path]:
    """The run's ``dups/`` files beside ``scored/`` (the dedup pass), when all exist."""
    paths = [as_path(p).parent.parent / "dups" / as_path(p).name for p in scored_paths]
    return paths if paths and all(p.is_file() for p in paths) else []


def open_engine(con: duckdb.DuckDBPyConnection, rule: Eligibility, scored_paths: Sequence[Path],
                columns: Sequence[str], *, normalization: Normalization = "minmax",
                weights_key: str = "weights") -> SelectionEngine:
    """A ``SelectionEngine`` whose candidates are the eligible documents of ``rule``."""
    return SelectionEngine(con, list(scored_paths), columns,
                           normalization=normalization, hard_filters=rule.hard_filters,
                           duplicate_paths=duplicate_paths(scored_paths),
                           drop_duplicates=rule.drop_duplicates, where=rule.where,
                           weights_key=weights_key)


@dataclass(frozen=True)
class EligiblePool:
    """The eligible documents and, per domain, the tokens they hold."""

    ids: pa.Array                  # string ids of the eligible documents
    tokens: dict[str, int]         # eligible tokens per domain (every domain of the input)
    all_tokens: dict[str, int]     # tokens per domain before eligibility

    def is_everything(self) -> bool:
        return self.tokens == self.all_tokens


def eligible_pool(rule: Eligibility, scored_paths: Sequence[Path], *,
                  memory_limit: str = "2GB", threads: int | None = None) -> EligiblePool:
    """Read the scored shards (ids, domains, tokens, reasons: no text) and return the
    eligible documents; user mistakes in ``rule`` raise ``SelectionError``."""
    con = connect(memory_limit, threads)
    register_object_stores(con, scored_paths)
    try:
        open_engine(con, rule, scored_paths, [])
        ids = con.sql("SELECT id FROM base WHERE drop_reason IS NULL ORDER BY id").arrow()
        if isinstance(ids, pa.RecordBatchReader):
            ids = ids.read_all()
        rows = con.sql("SELECT domain, coalesce(sum(n_tokens) FILTER (drop_reason IS NULL), 0),"
                       " sum(n_tokens) FROM base GROUP BY domain ORDER BY domain").fetchall()
    finally:
        con.close()
    return EligiblePool(ids.column("id").combine_chunks().cast(pa.string()),
                        {str(d): int(e) for d, e, _ in rows},
                        {str(d): int(a) for d, _, a in rows})
