"""Shared pieces of the Altair charts: inline data without NaN, the figure theme, and
the few encodings every chart repeats."""

from __future__ import annotations

import math
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

#: Domain colours stay the same in every figure (Tableau 10, in sorted-domain order).
PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#eeca3b",
           "#9d755d", "#ff9da6", "#bab0ac")
#: Vega's Tableau 20: pairs of a dark and a light shade; for 11-20 categories.
TABLEAU20 = ("#4c78a8", "#9ecae9", "#f58518", "#ffbf79", "#54a24b", "#88d27a", "#b79a20",
             "#f2cf5b", "#439894", "#83bcb6", "#e45756", "#ff9d98", "#79706e", "#bab0ac",
             "#d67195", "#fcbfd2", "#b279a2", "#d6a5c9", "#9e765f", "#d8b5a5")
OUTCOME_COLORS = {"written": "#54a24b", "kept": "#54a24b", "dropped": "#f58518",
                  "quarantined": "#e45756"}
FONT = "Liberation Sans, Arial, Helvetica, sans-serif"


def _clean(value: Any) -> Any:
    """JSON-safe scalar: NaN/inf -> null, numpy -> Python, floats to 6 significant digits
    (the page stays small and reruns write the same bytes)."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return float(f"{v:.6g}") if math.isfinite(v) else None
    if isinstance(value, np.bool_):
        return bool(value)
    return value


class Datasets:
    """The data of one figure, kept out of Altair's objects: Altair validates inline values
    row by row against its JSON schema (seconds for a few thousand rows), while a named
    dataset attached to the finished spec costs nothing and renders the same."""

    def __init__(self) -> None:
        self.values: dict[str, list[dict[str, Any]]] = {}

    def chart(self, df: pd.DataFrame, **kwargs: Any) -> alt.Chart:
        name = f"data-{len(self.values)}"
        self.values[name] = [{k: _clean(v) for k, v in row.items()}
                             for row in df.to_dict("records")]
        return alt.Chart(alt.NamedData(name=name), **kwargs)


def domain_color(domains: list[str], field: str = "domain", title: str = "domain") -> alt.Color:
    doms = sorted(domains)
    return alt.Color(f"{field}:N", title=title, scale=alt.Scale(
        domain=doms, range=[PALETTE[i % len(PALETTE)] for i in range(len(doms))]))


def distinct_colors(n: int) -> list[str]:
    """``n`` different colours: Tableau 10, then 20, then evenly spaced hues in two
    lightnesses. A named scheme cycles past its size (17 drop reasons in Tableau 10 read
    as 10 colours: issue 29), so the palette is sized to the categories."""
    import colorsys

    if n <= len(PALETTE):
        return list(PALETTE[:n])
    if n <= len(TABLEAU20):
        return list(TABLEAU20[:n])
    out = []
    for i in range(n):
        r, g, b = colorsys.hls_to_rgb(i / n, 0.42 if i % 2 else 0.62, 0.65)
        out.append(f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}")
    return out


def category_color(field: str, values: list[str], title: str | None = None) -> alt.Color:
    """A nominal colour with one distinct colour per value (``distinct_colors``)."""
    names = sorted(dict.fromkeys(values))
    return alt.Color(f"{field}:N", title=title or field, scale=alt.Scale(
        domain=names, range=distinct_colors(len(names))))


def finish(c: Any, data: Datasets, title: str | None = None) -> dict[str, Any]:
    """The complete spec of a chart, with the report's theme and its data inline."""
    if title:
        c = c.properties(title=alt.TitleParams(title, anchor="start", fontSize=14))
    c = c.configure(font=FONT).configure_view(stroke="#ddd").configure_axis(
        labelFontSize=11, titleFontSize=11, labelLimit=260).configure_header(
        labelFontSize=11, labelLimit=240, titleFontSize=11).configure_legend(
        labelFontSize=11, titleFontSize=11, labelLimit=260)
    spec = c.to_dict()
    spec["datasets"] = {**spec.get("datasets", {}), **data.values}
    return spec


def spearman_label(df: pd.DataFrame, group: list[str]) -> pd.Series:
    """'<group values> · ρ = x.xx (n = N)' per row: the panel titles of predicted-vs-actual
    scatters."""
    def label(g: pd.DataFrame) -> str:
        ok = g[["actual", "predicted"]].dropna()
        rho = (ok["actual"].rank().corr(ok["predicted"].rank())
               if len(ok) > 2 and ok["predicted"].nunique() > 1 else float("nan"))
        name = " · ".join(str(g.iloc[0][c]) for c in group)
        rho_text = "n/a" if not math.isfinite(rho) else f"{rho:.2f}"
        return f"{name} · ρ = {rho_text} (n = {len(ok)})"

    labels = {key if isinstance(key, tuple) else (key,): label(g)
              for key, g in df.groupby(group, sort=False)}
    keys = df[group].itertuples(index=False, name=None)
    return pd.Series([labels[k] for k in keys], index=df.index)
