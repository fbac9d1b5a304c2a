"""``metamix report``: one self-contained HTML page (and a PNG per figure) showing what
every step of a run decided — corpus accounting, score distributions, the Meta-rater fit,
the mixture search and the selection — built from the files the steps left in
``out/<run>/``.

Exports load lazily: ``metamix --help`` imports the report's CLI arguments, not Altair.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ReportOptions", "ReportResult", "build_report", "print_summary"]


def __getattr__(name: str) -> Any:
    if name == "ReportOptions":
        from metamix.report.context import ReportOptions

        return ReportOptions
    if name in ("ReportResult", "build_report", "print_summary"):
        from metamix.report import build

        return getattr(build, name)
    raise AttributeError(f"module 'metamix.report' has no attribute {name!r}")
