"""The selection: what was kept per domain, why the rest was not, and how the most heavily
weighted scores moved (``selection_summary.json`` and ``selected/<domain>.parquet``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from metamix.report.binning import bin_edges, histogram

STAGES = ("before", "after")


def tokens_per_domain(summary: dict[str, Any]) -> pd.DataFrame:
    """domain, before_docs, after_docs, before_tokens, after_tokens, budget_tokens,
    kept_token_share."""
    budgets = (summary.get("quotas") or {}).get("budget_tokens") or {}
    rows = []
    for domain, d in sorted((summary.get("domains") or {}).items()):
        rows.append({"domain": domain, "before_docs": d.get("docs_before"),
                     "after_docs": d.get("docs_after"), "before_tokens": d.get("tokens_before"),
                     "after_tokens": d.get("tokens_after"),
                     "budget_tokens": budgets.get(domain)})
    df = pd.DataFrame(rows, columns=["domain", "before_docs", "after_docs", "before_tokens",
                                     "after_tokens", "budget_tokens"])
    df["kept_token_share"] = df["after_tokens"] / df["before_tokens"].where(
        df["before_tokens"] > 0)
    return df


def tokens_long(per_domain: pd.DataFrame) -> pd.DataFrame:
    """domain, stage (before/after), tokens, docs — for grouped bars."""
    rows = [{"domain": r["domain"], "stage": s, "tokens": r[f"{s}_tokens"],
             "docs": r[f"{s}_docs"]} for _, r in per_domain.iterrows() for s in STAGES]
    return pd.DataFrame(rows, columns=["domain", "stage", "tokens", "docs"])


def drops_per_domain(summary: dict[str, Any]) -> pd.DataFrame:
    """domain, reason, docs, tokens: why documents were not kept (not_selected = below the
    cut or over the budget; other reasons are hard filters)."""
    rows = []
    for domain, d in sorted((summary.get("domains") or {}).items()):
        tokens = d.get("dropped_tokens") or {}
        for reason, n in sorted((d.get("dropped_docs") or {}).items()):
            rows.append({"domain": domain, "reason": reason, "docs": int(n),
                         "tokens": tokens.get(reason)})
    return pd.DataFrame(rows, columns=["domain", "reason", "docs", "tokens"])


def weighted_columns(summary: dict[str, Any], limit: int = 8) -> list[str]:
    """The score columns with the largest absolute selection weight (ties by name)."""
    weights = ((summary.get("resolved") or {}).get("weights")
               or (summary.get("config") or {}).get("weights") or {})
    ranked = sorted(weights.items(), key=lambda kv: (-abs(float(kv[1])), kv[0]))
    return [name for name, w in ranked if float(w) != 0][:limit]


def before_after(before: pd.DataFrame, after: pd.DataFrame, columns: list[str],
                 bins: int = 30) -> pd.DataFrame:
    """column, stage, bin_start, bin_end, bin_mid, count, share — each column binned on the
    edges of its distribution before selection, so the two outlines are comparable."""
    frames = []
    for c in columns:
        if c not in before or c not in after:
            continue
        edges = bin_edges(before[c].to_numpy(np.float64), bins)
        values = pd.concat([before[c], after[c]], ignore_index=True)
        stage = pd.Series(["before"] * len(before) + ["after"] * len(after))
        hist = histogram(values, stage, edges=edges).rename(columns={"group": "stage"})
        frames.append(hist.assign(column=c))
    if not frames:
        return pd.DataFrame()
    df = pd.concat(frames, ignore_index=True)
    return df[["column", "stage", "bin_start", "bin_end", "bin_mid", "count", "share"]]
