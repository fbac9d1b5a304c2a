"""Charts of the fitted models and searches: predicted vs actual, learned weights, the
learned selection against its baselines, the mixture and the search trace."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd

from metamix.report.chartkit import Datasets, domain_color, finish, spearman_label

Spec = dict[str, Any]
KIND_COLORS = {"learned": "#e45756", "random": "#222222", "equal": "#f58518",
               "single": "#9ecae9", "dirichlet": "#4c78a8", "sample": "#4c78a8",
               "bo": "#f58518", "final": "#e45756"}


def _kind_color(kinds: list[str], title: str = "run") -> alt.Color:
    known = [k for k in KIND_COLORS if k in kinds] + sorted(set(kinds) - set(KIND_COLORS))
    return alt.Color("kind:N", title=title, scale=alt.Scale(
        domain=known, range=[KIND_COLORS.get(k, "#b279a2") for k in known]))


def predicted_vs_actual(oof: pd.DataFrame, group: list[str], columns: int = 3) -> Spec:
    """One scatter per model (out-of-fold prediction vs actual loss) with the y = x line;
    panel titles carry the Spearman ρ the points show."""
    data = Datasets()
    df = oof.assign(panel=spearman_label(oof, group))
    panels = list(dict.fromkeys(df["panel"]))
    base = data.chart(df)
    points = base.mark_circle(size=36, opacity=0.75).encode(
        x=alt.X("actual:Q", title="actual loss", scale=alt.Scale(zero=False)),
        y=alt.Y("predicted:Q", title="predicted (out of fold)", scale=alt.Scale(zero=False)),
        tooltip=["run_id:N", alt.Tooltip("actual:Q", format=".4f"),
                 alt.Tooltip("predicted:Q", format=".4f")])
    diagonal = base.mark_line(color="#888", strokeDash=[4, 3]).encode(
        x="actual:Q", y="actual:Q")
    c = alt.layer(diagonal, points).properties(width=220, height=200).facet(
        facet=alt.Facet("panel:N", sort=panels, title=None), columns=columns
    ).resolve_scale(x="independent", y="independent")
    return finish(c, data)


def learned_weights(weights: pd.DataFrame) -> Spec:
    """Signed learned weight and LightGBM importance per score, in one row order."""
    data = Datasets()
    order = list(weights["score"])
    base = data.chart(weights).encode(
        y=alt.Y("score:N", sort=order, title=None),
        tooltip=["score:N", alt.Tooltip("weight:Q", format=".4f"),
                 alt.Tooltip("importance:Q", format=".3f")])
    weight = base.mark_bar().encode(
        x=alt.X("weight:Q", title="learned weight (negative: lower is better)"),
        color=alt.condition(alt.datum.weight >= 0, alt.value("#4c78a8"),
                            alt.value("#e45756"))).properties(width=260, height=alt.Step(13))
    importance = base.mark_bar(color="#72b7b2").encode(
        x=alt.X("importance:Q", title="importance (share of LightGBM gain)"),
        y=alt.Y("score:N", sort=order, axis=None)).properties(width=200, height=alt.Step(13))
    return finish(alt.hconcat(weight, importance, spacing=8), data)


def baselines(df: pd.DataFrame, dirichlet: pd.DataFrame) -> Spec:
    """Actual proxy loss of the learned weights and every baseline, ± 2 seed-noise std, over
    the spread of the K Dirichlet runs (grey band: their 10–90% range)."""
    data = Datasets()
    order = list(df["label"])
    color = _kind_color(list(df["kind"].unique()), "selection")
    layers = []
    if len(dirichlet) > 1:
        band = pd.DataFrame({"lo": [dirichlet["loss"].quantile(0.1)],
                             "hi": [dirichlet["loss"].quantile(0.9)]})
        layers.append(data.chart(band).mark_rect(color="#ddd", opacity=0.6).encode(
            x="lo:Q", x2="hi:Q", tooltip=[alt.Tooltip("lo:Q", format=".4f", title="p10"),
                                          alt.Tooltip("hi:Q", format=".4f", title="p90")]))
    base = data.chart(df).encode(y=alt.Y("label:N", sort=order, title=None))
    layers.append(base.mark_rule(strokeWidth=1.5).encode(
        x=alt.X("lo:Q", title="proxy validation loss (nats/token)",
                scale=alt.Scale(zero=False)), x2="hi:Q", color=color))
    layers.append(base.mark_circle(size=50, opacity=1).encode(
        x="loss:Q", color=color,
        tooltip=["label:N", "kind:N", alt.Tooltip("loss:Q", format=".4f"),
                 alt.Tooltip("lo:Q", format=".4f"), alt.Tooltip("hi:Q", format=".4f")]))
    return finish(alt.layer(*layers).properties(width=420, height=alt.Step(13)), data)


def doc_lengths(df: pd.DataFrame) -> Spec:
    data = Datasets()
    c = data.chart(df).mark_circle(size=40, opacity=0.8).encode(
        x=alt.X("tokens_per_doc:Q", title="mean tokens per selected document (log)",
                scale=alt.Scale(type="log", nice=False)),
        y=alt.Y("loss:Q", title="proxy validation loss", scale=alt.Scale(zero=False)),
        color=_kind_color(list(df["kind"].unique()), "selection"),
        tooltip=["run_id:N", "kind:N", alt.Tooltip("docs:Q", format=","),
                 alt.Tooltip("tokens_per_doc:Q", format=".0f"),
                 alt.Tooltip("loss:Q", format=".4f")])
    return finish(c.properties(width=480, height=260), data)


def surrogate_kfold(df: pd.DataFrame) -> Spec:
    """K-fold Spearman of each surrogate with and without MDE features (the run's table)."""
    data = Datasets()
    c = data.chart(df).mark_bar().encode(
        y=alt.Y("surrogate:N", title=None),
        yOffset=alt.YOffset("features:N", sort=["weights", "weights + MDE"]),
        x=alt.X("spearman:Q", title="K-fold Spearman ρ (objective)",
                scale=alt.Scale(domain=[-1, 1])),
        color=alt.Color("features:N", sort=["weights", "weights + MDE"],
                        scale=alt.Scale(range=["#9ecae9", "#4c78a8"])),
        stroke=alt.condition(alt.datum.chosen, alt.value("black"), alt.value(None)),
        strokeWidth=alt.value(2),
        tooltip=["surrogate:N", "features:N", alt.Tooltip("spearman:Q", format=".3f"),
                 alt.Tooltip("mse:Q", format=".3g"), "chosen:N"])
    return finish(c.properties(width=420, height=alt.Step(14)), data)


def mixture_weights(df: pd.DataFrame) -> Spec:
    """Chosen weight next to the token prior per domain; the availability cap as a tick."""
    data = Datasets()
    long = df.melt(id_vars=["domain", "cap", "tokens", "epochs"],
                   value_vars=["prior", "chosen"], var_name="series", value_name="weight")
    bars = data.chart(long).mark_bar().encode(
        x=alt.X("domain:N", title=None, axis=alt.Axis(labelAngle=0)),
        xOffset=alt.XOffset("series:N", sort=["prior", "chosen"]),
        y=alt.Y("weight:Q", title="mixture weight"),
        color=alt.Color("series:N", sort=["prior", "chosen"], title=None,
                        scale=alt.Scale(range=["#bab0ac", "#4c78a8"])),
        tooltip=["domain:N", "series:N", alt.Tooltip("weight:Q", format=".4f"),
                 alt.Tooltip("tokens:Q", format=","), alt.Tooltip("epochs:Q", format=".2f")])
    caps = data.chart(df.dropna(subset=["cap"])).mark_tick(color="black", thickness=2,
                                                       size=40).encode(
        x="domain:N", y="cap:Q",
        tooltip=["domain:N", alt.Tooltip("cap:Q", format=".4f", title="availability cap")])
    width = 60 * len(df)  # a fixed width: a Step conflicts with the offset bars' own step
    return finish(alt.layer(bars, caps).properties(width=width, height=240), data)


def search_trace(df: pd.DataFrame) -> Spec:
    """Every proxy run's objective in run order, and the best so far."""
    data = Datasets()
    base = data.chart(df).encode(x=alt.X("step:Q", title="proxy run (in the order run)"))
    points = base.mark_circle(size=40).encode(
        y=alt.Y("objective:Q", title="objective (validation loss)", scale=alt.Scale(zero=False)),
        color=_kind_color(list(df["kind"].unique())),
        tooltip=["step:Q", "run_id:N", "kind:N", alt.Tooltip("objective:Q", format=".4f"),
                 alt.Tooltip("proxy_seconds:Q", format=".1f", title="cumulative proxy s")])
    best = base.mark_line(interpolate="step-after", color="#333").encode(
        y="best_so_far:Q")
    return finish(alt.layer(best, points).properties(width=520, height=240), data)


def final_losses(df: pd.DataFrame) -> Spec:
    data = Datasets()
    long = df.melt(id_vars="domain", value_vars=["predicted", "actual"], var_name="value",
                   value_name="loss").dropna()
    c = data.chart(long).mark_point(filled=True, size=70).encode(
        y=alt.Y("domain:N", title=None), x=alt.X("loss:Q", title="validation loss",
                                                 scale=alt.Scale(zero=False)),
        shape=alt.Shape("value:N", sort=["predicted", "actual"], title=None),
        color=domain_color(list(df["domain"])),
        tooltip=["domain:N", "value:N", alt.Tooltip("loss:Q", format=".4f")])
    return finish(c.properties(width=420, height=alt.Step(18)), data)
