"""What a selection is made of, against random selections of the same tokens: documents
and median length per domain (a selection that spends its budget on a few long documents
has collapsed) and the sources that fill each domain (a selection drifting towards the
sources that resemble the fit target shows here first)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: A domain whose selection keeps fewer documents than this share of a random selection's
#: (same tokens) has collapsed onto a few long documents.
COLLAPSE_RATIO = 0.5
#: sources listed per domain
TOP_SOURCES = 3


def length_diagnostics(stats: Mapping[str, Mapping[str, Any]], run_id: str,
                       random_ids: Sequence[str]) -> dict[str, Any]:
    """Docs and median document length per domain: ``run_id`` vs the random draws' mean."""
    mine = stats.get(run_id, {})
    randoms = [stats[r] for r in random_ids if r in stats]
    domains = sorted({d for s in stats.values() for d in s.get("docs", {})})
    per_domain = {}
    collapsed = []
    for d in domains:
        rand_docs = [s["docs"].get(d, 0) for s in randoms]
        rand_median = [s["median_tokens"].get(d, 0) for s in randoms]
        entry = {"learned_docs": mine.get("docs", {}).get(d, 0),
                 "learned_median_tokens": mine.get("median_tokens", {}).get(d, 0),
                 "random_docs": float(np.mean(rand_docs)) if rand_docs else None,
                 "random_median_tokens": float(np.mean(rand_median)) if rand_median else None}
        entry["docs_ratio"] = (entry["learned_docs"] / entry["random_docs"]
                               if entry["random_docs"] else None)
        per_domain[d] = entry
        if entry["random_docs"] and entry["learned_docs"] < COLLAPSE_RATIO * entry["random_docs"]:
            collapsed.append(d)
    return {"per_domain": per_domain, "collapsed_domains": collapsed,
            "learned_median_tokens": mine.get("median_all"),
            "random_median_tokens": (float(np.mean([s["median_all"] for s in randoms]))
                                     if randoms else None)}


def source_diagnostics(stats: Mapping[str, Mapping[str, Any]], run_id: str,
                       random_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Per domain, the sources with the largest token share in ``run_id``'s selection, with
    the random draws' mean and std share of each."""
    mine = stats.get(run_id, {}).get("source_tokens") or {}
    randoms = [stats[r].get("source_tokens") or {} for r in random_ids if r in stats]
    out = {}
    for domain, tokens in sorted(mine.items()):
        total = sum(tokens.values()) or 1
        shares = []
        for src, n in sorted(tokens.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_SOURCES]:
            rand = [r.get(domain, {}).get(src, 0) / max(sum(r.get(domain, {}).values()), 1)
                    for r in randoms]
            shares.append({"source": src, "share": n / total,
                           "random_share": float(np.mean(rand)) if rand else None,
                           "random_std": float(np.std(rand, ddof=1)) if len(rand) > 1 else None})
        out[domain] = shares
    return out
