"""Histograms computed here, not in the browser: the page then carries ~30 numbers per
group instead of every sampled value, and the figures' data can be checked in tests."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

#: Values beyond these quantiles fall into the edge bins, so one outlier (a 10^6-word
#: document) does not squeeze the whole distribution into a single bar.
CLIP_QUANTILES = (0.005, 0.995)


def bin_edges(values: np.ndarray, bins: int = 30, log: bool = False) -> np.ndarray:
    """Shared edges for one column: unit bins centred on the integers for small-range
    integer data (counts, flags), else ``bins`` equal bins (geometric when ``log``) over the
    clipped range."""
    finite = values[np.isfinite(values)]
    if log:
        finite = finite[finite > 0]
    if finite.size == 0:
        return np.array([0.0, 1.0])
    lo, hi = np.quantile(finite, CLIP_QUANTILES)
    if not log and np.all(finite == np.round(finite)):
        lo, hi = math.floor(lo), math.ceil(hi)
        if hi - lo <= bins:
            return np.arange(lo, hi + 2, dtype=np.float64) - 0.5
    if hi <= lo:
        return np.array([lo - 0.5, lo + 0.5]) if not log else np.array([lo / 2, lo * 2])
    if log:
        return np.geomspace(lo, hi, bins + 1)
    return np.linspace(lo, hi, bins + 1)


def histogram(values: pd.Series, groups: pd.Series, *, bins: int = 30, log: bool = False,
              edges: np.ndarray | None = None) -> pd.DataFrame:
    """Per-group counts on shared edges: columns group, bin_start, bin_end, bin_mid, count,
    share (of the group's finite values; every bin of every group, zeros included, so the
    outlines close). Values outside the edges are counted in the edge bins."""
    x = values.to_numpy(dtype=np.float64)
    if edges is None:
        edges = bin_edges(x, bins, log)
    mids = np.sqrt(edges[:-1] * edges[1:]) if log else (edges[:-1] + edges[1:]) / 2
    frames = []
    for group in sorted(pd.unique(groups.astype(str))):
        v = x[(groups.astype(str) == group).to_numpy()]
        v = v[np.isfinite(v) & ((v > 0) if log else True)]
        idx = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, len(edges) - 2)
        counts = np.bincount(idx, minlength=len(edges) - 1)
        frames.append(pd.DataFrame({
            "group": group, "bin_start": edges[:-1], "bin_end": edges[1:], "bin_mid": mids,
            "count": counts, "share": counts / max(len(v), 1)}))
    if not frames:
        return pd.DataFrame(columns=["group", "bin_start", "bin_end", "bin_mid", "count",
                                     "share"])
    return pd.concat(frames, ignore_index=True)
