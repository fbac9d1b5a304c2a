"""Charts of the data itself: corpus counts, accounting, score distributions, correlations,
drop reasons and the selection. Each takes the frame its ``*_data`` function returns and
gives a complete Vega-Lite spec."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd

from metamix.report.chartkit import (
    OUTCOME_COLORS,
    Datasets,
    category_color,
    domain_color,
    finish,
)

Spec = dict[str, Any]


def domain_counts(counts: pd.DataFrame) -> Spec:
    """Documents and tokens per domain, train and validation side by side."""
    data = Datasets()
    base = data.chart(counts).encode(
        y=alt.Y("domain:N", title=None),
        yOffset=alt.YOffset("split:N", sort=["train", "validation"]),
        color=alt.Color("split:N", title="split", sort=["train", "validation"],
                        scale=alt.Scale(range=["#4c78a8", "#9ecae9"])),
        tooltip=["split:N", "domain:N", alt.Tooltip("docs:Q", format=","),
                 alt.Tooltip("tokens:Q", format=",")])
    docs = base.mark_bar().encode(x=alt.X("docs:Q", title="documents")).properties(
        width=300, height=alt.Step(12))
    tokens = base.mark_bar().encode(x=alt.X("tokens:Q", title="tokens")).properties(
        width=300, height=alt.Step(12))
    return finish(alt.hconcat(docs, tokens), data)


def accounting(long: pd.DataFrame, stages: list[str]) -> Spec:
    """read = written + dropped + quarantined, one stacked bar per stage."""
    data = Datasets()
    outcomes = ["written", "dropped", "quarantined"]
    c = data.chart(long).mark_bar().encode(
        y=alt.Y("stage:N", sort=stages, title=None),
        x=alt.X("rows:Q", title="rows (bar length = rows read)"),
        color=alt.Color("outcome:N", sort=outcomes, scale=alt.Scale(
            domain=outcomes, range=[OUTCOME_COLORS[o] for o in outcomes])),
        order=alt.Order("order:Q"),
        tooltip=["stage:N", "outcome:N", alt.Tooltip("rows:Q", format=","),
                 alt.Tooltip("read:Q", format=",")])
    return finish(c.properties(width=560, height=alt.Step(22)), data)


def reasons(df: pd.DataFrame) -> Spec:
    """Rows dropped or quarantined per stage and reason."""
    data = Datasets()
    df = df.assign(label=df["stage"] + " · " + df["reason"])
    c = data.chart(df).mark_bar().encode(
        y=alt.Y("label:N", title=None, sort=list(df["label"])),
        x=alt.X("rows:Q", title="rows"),
        color=alt.Color("outcome:N", scale=alt.Scale(
            domain=["dropped", "quarantined"],
            range=[OUTCOME_COLORS["dropped"], OUTCOME_COLORS["quarantined"]])),
        tooltip=["stage:N", "outcome:N", "reason:N", alt.Tooltip("rows:Q", format=",")])
    return finish(c.properties(width=480, height=alt.Step(18)), data)


def _outline(data: Datasets, hist: pd.DataFrame, group: str, color: alt.Color,
             facet: str | None = None, log: bool = False) -> alt.Chart:
    """Histogram outlines (one step line per group) on shared bins. Only the fields drawn
    travel with the page: a histogram figure is most of its size."""
    fields = [f for f in (facet, group, "bin_mid", "count", "share") if f]
    return data.chart(hist[fields]).mark_line(interpolate="step", strokeWidth=1.5).encode(
        x=alt.X("bin_mid:Q", title=None, scale=alt.Scale(type="log" if log else "linear",
                                                         zero=False, nice=False)),
        y=alt.Y("share:Q", title=None, axis=alt.Axis(format="%")),
        color=color,
        tooltip=[f"{group}:N", alt.Tooltip("bin_mid:Q", format=".4g", title="bin centre"),
                 alt.Tooltip("count:Q", format=","), alt.Tooltip("share:Q", format=".1%")])


def lengths(hist: pd.DataFrame) -> Spec:
    data = Datasets()
    domains = sorted(hist["domain"].unique())
    c = _outline(data, hist, "domain", domain_color(domains), log=True).encode(
        x=alt.X("bin_mid:Q", title="tokens per document (log scale)",
                scale=alt.Scale(type="log", nice=False)),
        y=alt.Y("share:Q", title="share of the domain's documents", axis=alt.Axis(format="%")))
    return finish(c.properties(width=560, height=220), data)


def score_distributions(hist: pd.DataFrame) -> Spec:
    """Small multiples: one panel per score column, one outline per domain."""
    data = Datasets()
    domains = sorted(hist["domain"].unique())
    panel = _outline(data, hist, "domain", domain_color(domains), "panel").properties(width=210,
                                                                            height=110)
    c = panel.facet(facet=alt.Facet("panel:N", sort=list(dict.fromkeys(hist["panel"])),
                                    title=None),
                    columns=4).resolve_scale(x="independent", y="independent")
    return finish(c, data)


def correlation(corr: pd.DataFrame, columns: list[str]) -> Spec:
    data = Datasets()
    order = [c for c in columns if c in set(corr["a"])]
    c = data.chart(corr).mark_rect().encode(
        x=alt.X("b:N", sort=order, title=None, axis=alt.Axis(labelAngle=-60, labelLimit=200)),
        y=alt.Y("a:N", sort=order, title=None, axis=alt.Axis(labelLimit=260)),
        color=alt.Color("rho:Q", title="Spearman ρ", scale=alt.Scale(
            scheme="redblue", domain=[-1, 1], reverse=True)),
        tooltip=["a:N", "b:N", alt.Tooltip("rho:Q", format=".3f")])
    step = 12 if len(order) > 30 else 18
    return finish(c.properties(width=alt.Step(step), height=alt.Step(step)), data)


def drop_reasons(drops: pd.DataFrame, domains: list[str]) -> Spec:
    """Share of each domain each filter would drop, stacked by reason; a panel per filter,
    each with its own reason colours (filters share no reasons)."""
    data = Datasets()
    panels = []
    for name, rows in drops.groupby("filter", sort=True):
        panels.append(data.chart(rows).mark_bar().encode(
            y=alt.Y("domain:N", title=None, sort=domains),
            x=alt.X("share:Q", title="share of the domain's documents",
                    axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
            color=category_color("reason", list(rows["reason"]), f"{name} reason"),
            tooltip=["filter:N", "domain:N", "reason:N", alt.Tooltip("docs:Q", format=","),
                     alt.Tooltip("share:Q", format=".1%")]).properties(
            title=str(name), width=260, height=alt.Step(14)))
    c = alt.concat(*panels, columns=2).resolve_scale(color="independent")
    return finish(c, data)


def tokens_kept(long: pd.DataFrame, per_domain: pd.DataFrame) -> Spec:
    """Tokens per domain before and after selection, with the budget as a tick."""
    data = Datasets()
    bars = data.chart(long).mark_bar().encode(
        y=alt.Y("domain:N", title=None),
        yOffset=alt.YOffset("stage:N", sort=["before", "after"]),
        x=alt.X("tokens:Q", title="tokens"),
        color=alt.Color("stage:N", sort=["before", "after"],
                        scale=alt.Scale(range=["#bab0ac", "#4c78a8"])),
        tooltip=["domain:N", "stage:N", alt.Tooltip("tokens:Q", format=","),
                 alt.Tooltip("docs:Q", format=",")])
    layers = [bars]
    budget = per_domain.dropna(subset=["budget_tokens"])
    if len(budget):
        layers.append(data.chart(budget).mark_tick(color="black", thickness=2, size=22).encode(
            y="domain:N", x="budget_tokens:Q",
            tooltip=["domain:N", alt.Tooltip("budget_tokens:Q", format=",", title="budget")]))
    # A fixed height: a Step would conflict with the step the offset bars set themselves.
    height = 26 * per_domain["domain"].nunique()
    return finish(alt.layer(*layers).properties(width=520, height=height), data)


def selection_drops(drops: pd.DataFrame) -> Spec:
    data = Datasets()
    c = data.chart(drops).mark_bar().encode(
        y=alt.Y("domain:N", title=None), x=alt.X("docs:Q", title="documents not kept"),
        color=category_color("reason", list(drops["reason"])),
        tooltip=["domain:N", "reason:N", alt.Tooltip("docs:Q", format=","),
                 alt.Tooltip("tokens:Q", format=",")])
    return finish(c.properties(width=520, height=alt.Step(18)), data)


def before_after(hist: pd.DataFrame, columns: list[str]) -> Spec:
    data = Datasets()
    color = alt.Color("stage:N", sort=["before", "after"], title="selection",
                      scale=alt.Scale(domain=["before", "after"], range=["#bab0ac", "#4c78a8"]))
    panel = _outline(data, hist, "stage", color, "column").properties(width=210, height=110)
    c = panel.facet(facet=alt.Facet("column:N", sort=columns, title=None),
                    columns=4).resolve_scale(x="independent", y="independent")
    return finish(c, data)
