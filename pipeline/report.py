"""End-of-run summary tables (stages, accounting invariant, quarantine reasons)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from metamix.base.errors import UserError
from metamix.pipeline.manifest import ShardStats


@dataclass
class StageReport:
    stage: str
    shards: int
    skipped: int
    totals: ShardStats
    seconds: float
    docs_processed: int

    def to_json(self) -> dict[str, object]:
        """What the stage produced: the same for a clean run and a resumed one."""
        return {"stage": self.stage, "shards": self.shards, **self.totals.to_json()}

    def timing_json(self) -> dict[str, object]:
        """How this invocation went (``logs/``: excluded from the byte-identical promise)."""
        return {"stage": self.stage, "resumed_shards": self.skipped,
                "seconds": round(self.seconds, 3), "docs_processed": self.docs_processed}


def print_reports(console: Console, reports: list[StageReport], title: str) -> None:
    table = Table(title=title, title_justify="left")
    for col in ("stage", "shards", "resumed", "read", "written", "dropped", "quarantined",
                "MB", "seconds", "docs/s"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    for r in reports:
        t = r.totals
        rate = r.docs_processed / r.seconds if r.seconds > 0 and r.docs_processed else 0.0
        table.add_row(r.stage, str(r.shards), str(r.skipped), f"{t.read:,}", f"{t.written:,}",
                      f"{sum(t.dropped.values()):,}", f"{sum(t.quarantined.values()):,}",
                      f"{t.bytes_in / 1e6:.1f}", f"{r.seconds:.1f}", f"{rate:,.0f}")
    console.print(table)
    for r in reports:
        t = r.totals
        reasons = {**{f"dropped:{k}": v for k, v in t.dropped.items()},
                   **{f"quarantined:{k}": v for k, v in t.quarantined.items()}}
        detail = ", ".join(f"{k}={v:,}" for k, v in sorted(reasons.items()))
        console.print(
            f"  {r.stage}: read {t.read:,} = written {t.written:,} + dropped "
            f"{sum(t.dropped.values()):,} + quarantined {sum(t.quarantined.values()):,}"
            + (f"  ({detail})" if detail else "")
        )


def check_stage_output(report: StageReport, max_quarantine_fraction: float, key: str,
                       run_dir: Path) -> None:
    """Stop when a stage wrote nothing, or quarantined more than ``max_quarantine_fraction``
    of what it read: a mapping mistake or a broken input must not run on to an empty
    selection with exit 0. The message gives the top reasons and one example row."""
    t = report.totals
    quarantined = sum(t.quarantined.values())
    too_many = t.read > 0 and quarantined > max_quarantine_fraction * t.read
    if t.written > 0 and not too_many:
        return
    reasons = Counter({**{f"dropped {k}": v for k, v in t.dropped.items()},
                       **{f"quarantined {k}": v for k, v in t.quarantined.items()}})
    top = ", ".join(f"{r} {n:,}" for r, n in reasons.most_common(3)) or "none"
    head = (f"{report.stage}: wrote 0 of the {t.read:,} rows it read" if t.written == 0 else
            f"{report.stage}: quarantined {quarantined:,} of {t.read:,} rows "
            f"({quarantined / t.read:.0%}) > {key} {max_quarantine_fraction:g}")
    example = _first_quarantined(run_dir, report.stage, t.quarantined.most_common(1))
    raise UserError(f"{head}; top reasons: {top}{example}"
                    + (f"; every row: {run_dir / 'quarantine'}" if quarantined else ""))


def _first_quarantined(run_dir: Path, stage: str, top: list[tuple[str, int]]) -> str:
    if not top:
        return ""
    for path in sorted((run_dir / "quarantine").glob(f"{stage}-*.parquet")):
        rows = pq.read_table(path, filters=[("reason", "=", top[0][0])]).slice(0, 1)
        if rows.num_rows:
            r = rows.to_pylist()[0]
            return f" (first: {r['shard']} row {r['row']}: {str(r['detail'])[:200]})"
    return ""
