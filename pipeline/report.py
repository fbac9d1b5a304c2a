"""End-of-run summary tables (stages, accounting invariant, quarantine reasons)."""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

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
