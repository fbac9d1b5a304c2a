"""What every section reads: the run folder, the report options, and the scored corpus
(its columns and one deterministic sample, loaded once)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from metamix.report.runfiles import (
    count_rows,
    read_json,
    sample_rows,
    score_columns,
    shard_paths,
)


@dataclass(frozen=True)
class ReportOptions:
    """How the report is made. ``seed`` picks the sample; the mix seed and folds must be the
    run's own so refitted out-of-fold predictions match the mix step's K-fold table."""

    seed: int = 0
    sample_rows: int = 50_000      # rows behind distributions and correlations (cli default)
    examples: int = 3              # documents at each end of each PRRC dimension
    excerpt_chars: int = 300
    mix_seed: int | None = None    # None: ``seed``
    mix_folds: int = 5
    png: bool = True
    png_scale: float = 2.0
    cache_dir: Path | None = None  # where the Vega JavaScript bundle is cached


@dataclass
class RunContext:
    run_dir: Path
    options: ReportOptions

    @cached_property
    def scored(self) -> list[Path]:
        return shard_paths(self.run_dir / "scored")

    @cached_property
    def selected(self) -> list[Path]:
        return shard_paths(self.run_dir / "selected")

    @cached_property
    def columns(self) -> tuple[list[str], list[str]]:
        """(numeric score columns, drop-reason columns) of the scored shards."""
        return score_columns(self.scored[0]) if self.scored else ([], [])

    @cached_property
    def n_scored(self) -> int:
        return count_rows(self.scored)

    @cached_property
    def sample(self) -> pd.DataFrame:
        """Score columns, domain and n_tokens of up to ``sample_rows`` scored documents."""
        extra = ["n_tokens"] if self.scored and "n_tokens" in _schema_names(self.scored[0]) \
            else []
        return sample_rows(self.scored, ["domain", *extra, *self.columns[0]],
                           self.options.sample_rows, self.options.seed)

    @cached_property
    def selection_summary(self) -> dict[str, Any] | None:
        return read_json(self.run_dir / "selection_summary.json")

    @cached_property
    def domains(self) -> list[str]:
        return sorted(self.sample["domain"].dropna().unique()) if self.scored else []

    def sample_note(self) -> str:
        n = len(self.sample)
        if n >= self.n_scored:
            return f"all {self.n_scored:,} scored documents"
        return (f"a deterministic sample of {n:,} of {self.n_scored:,} scored documents "
                f"(smallest md5(id:{self.options.seed}))")


def _schema_names(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    return pq.read_schema(path).names
