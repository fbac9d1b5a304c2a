"""The Meta-rater summary as terminal tables: held-out families first, then what the
shipped selection is made of."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _fmt(v: float | None, digits: int = 4) -> str:
    return "failed" if v is None else f"{v:.{digits}f}"


def _gap(entry: dict[str, Any] | None) -> str:
    if not entry or entry.get("gap_std") is None:
        return "-"
    lo, hi = entry["gap_interval"]
    shrunk = "" if entry.get("shrinkage") is None else f" s={entry['shrinkage']:g}"
    return f"{entry['gap_std']:+.1f} [{lo:+.1f}, {hi:+.1f}] #{entry['rank']}{shrunk}"


def print_summary(summary: dict[str, Any], console: Console) -> None:
    held = summary["held_out"]
    how = "in-family (one family)" if held["in_family_only"] else "held out of the fit"
    table = Table(title=f"Meta-rater per target family, {how}: gap to random in noise std "
                  "[90% bootstrap], #rank, s = shrinkage towards equal weights (report half; "
                  "negative = better)")
    for col in ("family", "targets", "learned", "equal", "best single", "single"):
        table.add_column(col, justify="left" if col in ("family", "targets", "single")
                         else "right")
    for name, f in summary["families"].items():
        table.add_row(name, ", ".join(f["targets"]), _gap(f["learned"]), _gap(f["equal"]),
                      _gap(f["single"]), str(f["single"].get("run_id") or "-"))
    means = held["mean_gap_std"]
    table.add_row("[bold]mean", "", *(("-" if means.get(k) is None else f"{means[k]:+.1f}")
                                      for k in ("learned", "equal", "single")), "")
    console.print(table)
    shipped = summary["shipped"]
    scores = ", ".join(f"{a}: {v:+.2f}" for a, v in held["shrinkage_scores"].items())
    console.print(f"shipped: {shipped['method']} ({shipped['run_id']}); shrinkage towards "
                  f"equal weights {held['shrinkage']:g}"
                  + (f" (held-out mean z by amount: {scores})" if scores else ""))
    frontier = held.get("best_worst_family")
    if frontier:
        console.print(f"of every weighting the sweep tried, {frontier['run_id']} comes closest "
                      "to beating random on every family: worst family "
                      f"{frontier['worst_gap_std']:+.1f} std; "
                      f"{frontier['runs_better_on_every_family']} runs are 2 std better on all")
    lengths = Table(title="shipped selection: documents per domain (same tokens) vs random")
    for col in ("domain", "docs", "median tokens", "random docs", "median tokens ", "ratio"):
        lengths.add_column(col, justify="left" if col == "domain" else "right")
    for domain, e in summary["document_lengths"]["per_domain"].items():
        lengths.add_row(domain, f"{e['learned_docs']:,}", f"{e['learned_median_tokens']:,.0f}",
                        _fmt(e["random_docs"], 1), _fmt(e["random_median_tokens"], 0),
                        _fmt(e["docs_ratio"], 2))
    console.print(lengths)
    if summary["sources"]:
        sources = Table(title="shipped selection: top sources per domain, token share vs "
                        "random (mean ± std)")
        for col in ("domain", "source", "share", "random"):
            sources.add_column(col, justify="left" if col in ("domain", "source") else "right")
        for domain, rows in summary["sources"].items():
            for row in rows:
                rand = ("-" if row["random_share"] is None else
                        f"{row['random_share']:.1%} ± {(row['random_std'] or 0):.1%}")
                sources.add_row(domain, row["source"], f"{row['share']:.1%}", rand)
        console.print(sources)
    cv = summary["cv"]
    console.print("K-fold Spearman (all-family regressor, out of fold): " + ", ".join(
        f"{k} {v['spearman']:.3f} on fit / {_fmt(v['report_spearman'], 3)} on report"
        for k, v in cv.items()) + f"; search used {summary['learned']['regressor']}; "
        f"{summary['n_random']} random draws")
    for line in summary["verdicts"]:
        console.print(f"[yellow]verdict:[/] {line}")
    if summary["n_failed"]:
        console.print(f"[red]{summary['n_failed']} runs failed[/] (errors in runs.parquet)")


def print_gap_rows(gaps: dict[str, dict[str, float]], families: list[str], console: Console
                   ) -> None:
    """The benches' table: per run, each family's gap to random, their mean and the worst."""
    console.print("run | " + " | ".join(families) + " | mean | worst")
    for label, by_family in gaps.items():
        g = [by_family[f] for f in families]
        console.print(f"{label} | " + " | ".join(f"{v:+.1f}" for v in g)
                      + f" | {sum(g) / len(g):+.2f} | {max(g):+.1f}")
