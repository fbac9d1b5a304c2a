"""``build_report``: every section whose outputs exist, one page, a PNG per figure."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
from rich.console import Console
from rich.table import Table

from metamix import __version__
from metamix.base.atomic import write_bytes_atomic
from metamix.base.errors import UserError
from metamix.report.context import ReportOptions, RunContext
from metamix.report.model import Figure, Section
from metamix.report.page import javascript_bundle, render_html, write_pngs
from metamix.report.sections_data import corpus_section, scores_section, selection_section
from metamix.report.sections_fit import metarater_section, mix_section

#: In the order of the pipeline; each returns None when none of its outputs exist.
SECTIONS: tuple[tuple[str, Callable[[RunContext], Section | None]], ...] = (
    ("corpus and accounting", corpus_section), ("scores", scores_section),
    ("Meta-rater", metarater_section), ("mixture", mix_section),
    ("selection", selection_section))


@dataclass
class ReportResult:
    path: Path                 # index.html
    size_bytes: int
    sections: list[Section]
    missing: list[str]         # sections with no outputs at all
    seconds: float

    @property
    def figures(self) -> list[Figure]:
        return [f for s in self.sections for f in s.figures]


def build_report(run_dir: Path, *, options: ReportOptions | None = None,
                 out_dir: Path | None = None, console: Console | None = None) -> ReportResult:
    """Write ``<out_dir>/index.html`` (default ``<run_dir>/report``) and one PNG per figure."""
    started = time.monotonic()
    options = options or ReportOptions()
    console = console or Console(stderr=True, quiet=True)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no run outputs; run `metamix run --config ...` first")
    out_dir = out_dir or run_dir / "report"
    ctx = RunContext(run_dir, options)
    sections, missing = [], []
    for name, make in SECTIONS:
        with console.status(f"report: {name}"):
            try:
                section = make(ctx)
            except (duckdb.Error, pa.ArrowException, OSError) as exc:
                raise UserError(f"{run_dir}: cannot read the {name} outputs "
                                f"({type(exc).__name__}: {str(exc)[:300]})") from None
        (sections.append(section) if section is not None else missing.append(name))
    if not sections:
        raise UserError(f"{run_dir}: no pipeline outputs to report on (manifests, "
                        "selection_summary.json, metarater/, mix/); run the pipeline first")
    ids = [f.id for s in sections for f in s.figures]
    if len(ids) != len(set(ids)):
        raise RuntimeError(f"duplicate figure ids: {sorted(i for i in ids if ids.count(i) > 1)}")
    with console.status("report: page"):
        html = render_html(f"metamix report · {run_dir.name}",
                           f"{run_dir} · metamix {__version__} · sections without outputs: "
                           f"{', '.join(missing) or 'none'}",
                           sections, javascript_bundle(options.cache_dir))
        path = out_dir / "index.html"
        write_bytes_atomic(path, html.encode("utf-8"))
    if options.png:
        with console.status(f"report: {len(ids)} PNGs"):
            write_pngs([f for s in sections for f in s.figures], out_dir, options.png_scale)
    return ReportResult(path, path.stat().st_size, sections, missing,
                        time.monotonic() - started)


def print_summary(result: ReportResult, console: Console) -> None:
    table = Table(title=f"metamix report · {result.seconds:.1f}s", title_justify="left")
    for col in ("section", "figures", "tables", "skipped"):
        table.add_column(col, justify="left" if col in ("section", "skipped") else "right")
    for s in result.sections:
        tables = len(s.items) - len(s.figures)
        skipped = [n for n in s.notes if not n.startswith("Verdict")]
        table.add_row(s.title, str(len(s.figures)), str(tables),
                      "\n".join(skipped) or "-")
    for name in result.missing:
        table.add_row(name, "0", "0", "no outputs")
    console.print(table)
    console.print(f"report: {result.path} ({result.size_bytes / 1e6:.2f} MB, "
                  f"{len(result.figures)} figures)")
