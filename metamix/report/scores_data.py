"""Scores: distributions per column and domain, their correlations, the filters' drop
reasons per domain, and the documents at both ends of each PRRC dimension."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from metamix.report.binning import histogram
from metamix.report.runfiles import DROP_REASON_SUFFIX, quote, read_rows_text, shards_view

#: Column prefix -> family title, most specific first; anything else is "other scores".
FAMILIES = (("rps_", "RedPajama"), ("gopher_rep_", "Gopher repetition"),
            ("gopher_", "Gopher quality"), ("c4_", "C4"), ("fineweb_", "FineWeb"),
            ("prrc_", "PRRC raters"))
OTHER_FAMILY = "Model-based and other scores"
PRRC_PREFIX = "prrc_"


def family_of(column: str) -> str:
    return next((title for prefix, title in FAMILIES if column.startswith(prefix)),
                OTHER_FAMILY)


def group_columns(columns: list[str], per_figure: int = 12) -> list[tuple[str, list[str]]]:
    """(title, columns) per figure: one per family in ``FAMILIES`` order, long families
    split into parts of at most ``per_figure`` panels."""
    by_family: dict[str, list[str]] = {}
    for c in columns:
        by_family.setdefault(family_of(c), []).append(c)
    order = [t for _, t in FAMILIES] + [OTHER_FAMILY]
    out = []
    for title in (t for t in order if t in by_family):
        cols = by_family[title]
        parts = [cols[i:i + per_figure] for i in range(0, len(cols), per_figure)]
        for i, part in enumerate(parts):
            out.append((title if len(parts) == 1 else f"{title} ({i + 1}/{len(parts)})", part))
    return out


#: A non-negative column reaching past this (word counts, perplexities) whose 99.5%
#: quantile is ``LOG_SPAN`` times its median is binned on log10(1 + x): on linear bins
#: nearly all of it would sit in the first bin.
LOG_MIN_HIGH = 100.0
LOG_SPAN = 10.0


def skewed(values: pd.Series) -> bool:
    v = values.to_numpy(np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0 or v.min() < 0:
        return False
    median, hi = np.quantile(v, [0.5, 0.995])
    return bool(hi >= LOG_MIN_HIGH and hi >= LOG_SPAN * max(median, 1e-12))


def score_histograms(sample: pd.DataFrame, columns: list[str], bins: int = 30) -> pd.DataFrame:
    """column, panel, domain, bin_start, bin_end, bin_mid, count, share — shared edges per
    column; skewed columns are binned on log10(1 + x) (panel "<column> (log10 1+x)")."""
    frames = []
    for c in columns:
        log = skewed(sample[c])
        values = np.log10(1 + sample[c]) if log else sample[c]
        hist = histogram(values, sample["domain"], bins=bins)
        frames.append(hist.rename(columns={"group": "domain"}).assign(
            column=c, panel=f"{c} (log10 1+x)" if log else c))
    if not frames:
        return pd.DataFrame()
    df = pd.concat(frames, ignore_index=True)
    return df[["column", "panel", "domain", "bin_start", "bin_end", "bin_mid", "count",
               "share"]]


def varying(sample: pd.DataFrame, columns: list[str]) -> list[str]:
    """Columns with at least two distinct finite values (a correlation needs variance)."""
    return [c for c in columns if sample[c].dropna().nunique() > 1]


def constant_values(sample: pd.DataFrame, columns: list[str]) -> str:
    """'a = 0, b = no values' for columns without variance (the caption of what is not
    drawn)."""
    def value(c: str) -> str:
        v = sample[c].dropna()
        return f"{v.iloc[0]:.4g}" if len(v) else "no values"
    return ", ".join(f"{c} = {value(c)}" for c in columns)


def correlation(sample: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """a, b, rho: Spearman correlation of every pair of varying columns (rank-based, since
    the scores are skewed and on unrelated scales), both triangles for a square heatmap."""
    cols = varying(sample, columns)
    if len(cols) < 2:
        return pd.DataFrame(columns=["a", "b", "rho"])
    rho = sample[cols].rank().corr(method="pearson")
    rho.index.name = "a"
    long = rho.reset_index().melt(id_vars="a", var_name="b", value_name="rho")
    long["rho"] = long["rho"].round(4)
    return long


def drop_reasons(paths: list[Path], reason_columns: list[str]) -> pd.DataFrame:
    """filter, domain, reason, docs, share (of the domain's documents) — every document of
    the corpus (a GROUP BY is cheap); a null reason means the filter would keep it."""
    cols = ["filter", "domain", "reason", "docs", "share"]
    if not paths or not reason_columns:
        return pd.DataFrame(columns=cols)
    con = shards_view(paths)
    frames = []
    for col in reason_columns:
        df = con.execute(
            f"SELECT domain, {quote(col)} AS reason, COUNT(*) AS docs FROM shards "
            f"GROUP BY ALL ORDER BY domain, reason NULLS FIRST").df()
        total = df.groupby("domain")["docs"].transform("sum")
        df["share"] = df["docs"] / total
        df.insert(0, "filter", col.removesuffix(DROP_REASON_SUFFIX))
        frames.append(df[df["reason"].notna()])
    return pd.concat(frames, ignore_index=True)[cols]


def prrc_examples(paths: list[Path], dimensions: list[str], k: int = 3,
                  chars: int = 300) -> pd.DataFrame:
    """dimension, end (top/bottom), rank, score, domain, id, excerpt — the ``k`` documents
    with the highest and lowest score of each PRRC column over the whole corpus (ties by
    id), with the first ``chars`` characters of their text."""
    cols = ["dimension", "end", "rank", "score", "domain", "id", "excerpt"]
    if not paths or not dimensions:
        return pd.DataFrame(columns=cols)
    con = shards_view(paths)
    picks = []
    for dim in dimensions:
        for end, order in (("top", "DESC"), ("bottom", "ASC")):
            df = con.execute(
                f"SELECT CAST(id AS VARCHAR) AS id, domain, CAST({quote(dim)} AS DOUBLE) AS "
                f"score, filename, file_row_number FROM shards WHERE {quote(dim)} IS NOT NULL "
                f"ORDER BY {quote(dim)} {order}, id LIMIT {int(k)}").df()
            df.insert(0, "rank", np.arange(1, len(df) + 1))
            df.insert(0, "end", end)
            df.insert(0, "dimension", dim.removeprefix(PRRC_PREFIX))
            picks.append(df)
    out = pd.concat(picks, ignore_index=True)
    texts: dict[tuple[str, int], str] = {}
    for filename, rows in out.groupby("filename")["file_row_number"]:
        got = read_rows_text(Path(filename), [int(r) for r in rows], chars)
        texts.update({(filename, r): t for r, t in got.items()})
    out["excerpt"] = [texts.get((f, int(r)), "")
                      for f, r in zip(out["filename"], out["file_row_number"], strict=True)]
    return out[cols]
