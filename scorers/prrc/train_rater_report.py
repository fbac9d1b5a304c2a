"""The tables ``train-rater`` prints: each rater on held-out kinds and on the test split, and
the kind-level means of the chosen defaults (where an inversion would show)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or value != value else f"{value:.{digits}f}"


def rater_table(report: dict[str, Any]) -> Table:
    scheme = report["scheme"].replace("_", "-")
    table = Table(title=(
        f"PRRC raters on {report['labels']}: held-out {report['group_by']}s ({scheme}, "
        f"{report['n_folds']} folds over {report['n']} labels) and the test split "
        f"(n={report['n_test']}, trained on {report['n_train']})"))
    columns = ("dimension", "rater", "held-out ρ", "held-out source ρ",
               "within-kind ρ mean/min", "kind-order ρ", "inversions", "std pred/cal/labels",
               "test ρ", "±1 acc", "macro-F1", "size", "default", "goal")
    for col in columns:
        table.add_column(col, justify="left" if col in ("dimension", "rater") else "right")
    goal = report["transfer_goal"]
    for dim, by_kind in report["metrics"].items():
        for kind, m in by_kind.items():
            cv, test = m["transfer"], m["test"]
            rho = cv["spearman"]
            met = rho is not None and rho == rho and rho >= goal and cv["n_inversions"] == 0
            spread = m.get("spread")
            table.add_row(
                dim, kind, _num(rho), _num(m.get("transfer_sources", {}).get("spearman")),
                f"{_num(cv['within_kind_spearman_mean'], 2)}/"
                f"{_num(cv['within_kind_spearman_min'], 2)}",
                _num(cv["kind_order_spearman"], 2), str(cv["n_inversions"]),
                (f"{spread['raw']['std_predicted']:.2f}/"
                 f"{spread['calibrated']['std_predicted']:.2f}/"
                 f"{spread['raw']['std_labels']:.2f}") if spread else "–",
                _num(test["spearman"]), _num(test["within1_acc"]), _num(test["macro_f1"]),
                f"{m['bytes'] / 1e6:.2f} MB", "✓" if report["defaults"][dim] == kind else "",
                "✓" if met else "✗")
    table.caption = (f"goal: held-out ρ ≥ {goal} and no kind-order inversion (labelled "
                     "kind means further apart than the margin, predicted the other way)")
    return table


def kind_means_table(report: dict[str, Any]) -> Table:
    """Rows = kinds of text; per dimension, labelled mean → held-out predicted mean of the
    default rater, flagged where that kind takes part in an inversion."""
    dims = list(report["metrics"])
    table = Table(title=f"Mean score per {report['group_by']}: labelled → predicted when held "
                        "out (default rater; ! = part of an inversion)")
    table.add_column(report["group_by"])
    table.add_column("n", justify="right")
    for dim in dims:
        table.add_column(f"{dim} ({report['defaults'][dim]})", justify="right")
    for group, n in report["groups"].items():
        cells = []
        for dim in dims:
            cv = report["metrics"][dim][report["defaults"][dim]]["transfer"]
            k = cv["kinds"][group]
            inverted = any(group in (i["higher"], i["lower"]) for i in cv["inversions"])
            cells.append(f"{k['label_mean']:.2f} → {k['predicted_mean']:.2f}"
                         + (" !" if inverted else ""))
        table.add_row(group, str(n), *cells)
    return table


def print_report(report: dict[str, Any], console: Console) -> None:
    console.print(rater_table(report))
    console.print(kind_means_table(report))
    for dim, by_kind in report["metrics"].items():
        for i in by_kind[report["defaults"][dim]]["transfer"]["inversions"]:
            console.print(f"inversion in {dim}: {i['higher']} is labelled "
                          f"{i['label_gap']:.2f} above {i['lower']} but predicted "
                          f"{-i['predicted_gap']:.2f} below it")
    console.print(f"defaults: {report['defaults']}  ({report['seconds']:.0f}s)")
