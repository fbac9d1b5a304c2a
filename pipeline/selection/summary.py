"""Selection summary: counts, score distributions, the row invariant and its rich rendering.

Statistics are rounded to 6 significant digits: they are for reading, and parallel float
aggregation (the mean) could otherwise differ in the last bit between reruns, breaking the
byte-identical summary.
"""

from __future__ import annotations

import math
from typing import Any

import duckdb
import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

QUANTILES = (0.1, 0.5, 0.9)
STAT_KEYS = ("count", "missing", "min", "p10", "p50", "p90", "max", "mean")
KEPT = ""  # outcome label of kept rows in the outcome counts


class SelectionInvariantError(RuntimeError):
    """rows read != rows written + rows dropped: a bug, never a user error."""


def _round(value: Any) -> Any:
    return float(f"{value:.6g}") if isinstance(value, float) else value


def _empty_stats() -> dict[str, Any]:
    return {key: (0 if key in ("count", "missing") else None) for key in STAT_KEYS}


def score_stats(
    con: duckdb.DuckDBPyConnection, relation: str, subset: str, columns: dict[str, str]
) -> tuple[dict[str | None, dict[str, dict[str, Any]]],
           dict[str | None, dict[str, dict[str, Any]]]]:
    """Distribution of each score per domain, plus all domains together under key None: of
    every row of ``relation``, and of the rows matching ``subset`` (the kept ones).

    One fetch, then NumPy per group: DuckDB's ``quantile_cont`` for 50 columns x 14 groups
    costs more than the rest of a small selection. Quantiles interpolate exactly as
    DuckDB's do (rank ``(n - 1) * q``, ``lo + (hi - lo) * frac``), so they are its values
    to the bit; a group without the subset's rows gets no entry, as a WHERE would give.
    """
    fields = ", ".join(f"{c} AS c{i}" for i, c in enumerate(columns.values()))
    data = con.sql(f"SELECT domain, ({subset}) AS in_subset, {fields} FROM {relation} "
                   "ORDER BY domain").fetchnumpy()
    domains = np.asarray(data["domain"], dtype=object)
    in_subset = np.asarray(np.ma.filled(data["in_subset"], False), dtype=bool)
    values = []
    for i in range(len(columns)):
        col = data[f"c{i}"]
        mask = np.ma.getmaskarray(col)
        values.append((np.asarray(np.ma.getdata(col), dtype=np.float64), mask))
    starts = np.flatnonzero(np.r_[True, domains[1:] != domains[:-1]]) if len(domains) else []
    bounds = list(zip(starts, [*starts[1:], len(domains)], strict=True))
    groups: list[tuple[str | None, np.ndarray]] = [
        (domains[a], np.arange(a, b)) for a, b in bounds]
    groups.append((None, np.arange(len(domains))))
    before: dict[str | None, dict[str, dict[str, Any]]] = {}
    after: dict[str | None, dict[str, dict[str, Any]]] = {}
    for key, rows in groups:
        before[key] = _group_stats(values, rows, list(columns))
        kept = rows[in_subset[rows]]
        if len(kept):
            after[key] = _group_stats(values, kept, list(columns))
    return before, after


def _group_stats(values: list[tuple[np.ndarray, np.ndarray]], rows: np.ndarray,
                 labels: list[str]) -> dict[str, dict[str, Any]]:
    out = {}
    for label, (col, mask) in zip(labels, values, strict=True):
        valid = col[rows[~mask[rows]]]
        stats = _empty_stats()
        stats.update(count=len(valid), missing=len(rows) - len(valid))
        if len(valid):
            ordered = np.sort(valid)
            qs = [_interpolate(ordered, q) for q in QUANTILES]
            stats.update(min=float(ordered[0]), p10=qs[0], p50=qs[1], p90=qs[2],
                         max=float(ordered[-1]), mean=float(valid.sum()) / len(valid))
        out[label] = {k: _round(v) for k, v in stats.items()}
    return out


def _interpolate(ordered: np.ndarray, q: float) -> float:
    """DuckDB's ``quantile_cont`` of sorted values."""
    rank = (len(ordered) - 1) * q
    lo_i, hi_i = math.floor(rank), math.ceil(rank)
    lo = float(ordered[lo_i])
    if lo_i == hi_i:
        return lo
    return lo + (float(ordered[hi_i]) - lo) * (rank - lo_i)


def _stats_or_empty(
    stats: dict[str | None, dict[str, dict[str, Any]]], key: str | None, labels: list[str]
) -> dict[str, dict[str, Any]]:
    return stats.get(key) or {label: _empty_stats() for label in labels}


def build_summary(
    *,
    inputs: list[str],
    config: dict[str, Any],
    resolved: dict[str, Any],
    quotas: dict[str, Any],
    outcome_counts: list[tuple[str, str, int, int]],
    written: dict[str, int],
    files: dict[str, str],
    stats_before: dict[str | None, dict[str, dict[str, Any]]],
    stats_after: dict[str | None, dict[str, dict[str, Any]]],
    warnings: list[str],
) -> dict[str, Any]:
    """Assemble the JSON summary and enforce rows read = rows written + rows dropped."""
    labels = ["combined_score", *resolved["weights"]]
    domains: dict[str, dict[str, Any]] = {}
    for domain in sorted(files):
        domains[domain] = {
            "file": files[domain], "docs_before": 0, "docs_after": written.get(domain, 0),
            "tokens_before": 0, "tokens_after": 0, "dropped_docs": {}, "dropped_tokens": {},
            "scores_before": _stats_or_empty(stats_before, domain, labels),
            "scores_after": _stats_or_empty(stats_after, domain, labels),
        }
    for domain, outcome, docs, tokens in outcome_counts:
        entry = domains[domain]
        entry["docs_before"] += docs
        entry["tokens_before"] += int(tokens)
        if outcome == KEPT:
            entry["tokens_after"] += int(tokens)
        else:
            entry["dropped_docs"][outcome] = docs
            entry["dropped_tokens"][outcome] = int(tokens)

    totals: dict[str, Any] = {"docs_before": 0, "docs_after": 0, "tokens_before": 0,
                              "tokens_after": 0, "dropped_docs": {}, "dropped_tokens": {}}
    for entry in domains.values():
        for key in ("docs_before", "docs_after", "tokens_before", "tokens_after"):
            totals[key] += entry[key]
        for key in ("dropped_docs", "dropped_tokens"):
            for reason, n in entry[key].items():
                totals[key][reason] = totals[key].get(reason, 0) + n
    totals["scores_before"] = _stats_or_empty(stats_before, None, labels)
    totals["scores_after"] = _stats_or_empty(stats_after, None, labels)

    for name, entry in [*domains.items(), ("<all>", totals)]:
        dropped = sum(entry["dropped_docs"].values())
        if entry["docs_before"] != entry["docs_after"] + dropped:
            raise SelectionInvariantError(
                f"domain {name}: rows read {entry['docs_before']} != rows written "
                f"{entry['docs_after']} + rows dropped {dropped}"
            )
    return {
        "inputs": inputs,
        "config": config,
        "resolved": resolved,
        "quotas": quotas,
        "domains": domains,
        "totals": totals,
        "invariant": {
            "rows_read": totals["docs_before"],
            "rows_written": totals["docs_after"],
            "rows_dropped": sum(totals["dropped_docs"].values()),
            "holds": True,
        },
        "warnings": warnings,
    }


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:,}" if isinstance(value, int) else f"{value:.4g}"


def render_summary_table(summary: dict[str, Any]) -> Table:
    """Per-domain docs/tokens before and after, drops by reason, median combined score."""
    inv = summary["invariant"]
    table = Table(
        title="Selection",
        caption=(f"rows read {inv['rows_read']:,} = written {inv['rows_written']:,} "
                 f"+ dropped {inv['rows_dropped']:,}  ✓"),
    )
    table.add_column("domain")
    for header in ("docs in", "docs out", "tokens in", "tokens out"):
        table.add_column(header, justify="right")
    table.add_column("dropped docs", no_wrap=True)
    table.add_column("p50 score in → out", justify="right")
    rows = [*summary["domains"].items(), ("[bold]all[/bold]", summary["totals"])]
    for i, (name, entry) in enumerate(rows):
        by_filter: dict[str, int] = {}
        for reason, n in entry["dropped_docs"].items():  # per-reason detail stays in the JSON
            by_filter[reason.split(":")[0]] = by_filter.get(reason.split(":")[0], 0) + n
        dropped = ", ".join(f"{name}: {n:,}" for name, n in sorted(by_filter.items())) or "-"
        p50_before = entry["scores_before"]["combined_score"]["p50"]
        p50_after = entry["scores_after"]["combined_score"]["p50"]
        table.add_row(
            name, _fmt(entry["docs_before"]), _fmt(entry["docs_after"]),
            _fmt(entry["tokens_before"]), _fmt(entry["tokens_after"]), dropped,
            f"{_fmt(p50_before)} → {_fmt(p50_after)}",
            end_section=i == len(rows) - 2,
        )
    return table


def print_summary(summary: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    console.print(render_summary_table(summary))
    for warning in summary["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False)
