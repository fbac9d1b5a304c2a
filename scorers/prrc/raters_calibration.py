"""Put a rater's output on the scale of the labels.

Regression heads shrink towards the mean: trained on labels spread over 0–5 they predict
2–4 for nearly everything, and the kind means that a mixture feels first barely separate.
A quantile map fitted on *out-of-fold* predictions (rows predicted by raters that never saw
their kind) sends each prediction's quantile to the same quantile of the labels, so the
calibrated scores spread like the labels while their order -- and so every Spearman -- stays
as it was. The labels are integers; each label value is spread evenly over its unit
interval (value ± 0.5) so the map is strictly increasing and keeps ties apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

KNOTS = 101


@dataclass(frozen=True)
class QuantileMap:
    """Piecewise-linear, increasing map from raw predictions to the label scale."""

    x: tuple[float, ...]
    y: tuple[float, ...]

    @classmethod
    def fit(cls, predicted: Sequence[float], labels: Sequence[int], knots: int = KNOTS
            ) -> QuantileMap:
        p = np.asarray(predicted, np.float64)
        y = np.asarray(labels, np.float64)
        if len(p) != len(y) or len(p) < 2:
            raise ValueError("a quantile map needs ≥ 2 (prediction, label) pairs")
        grid = np.linspace(0.0, 1.0, knots)
        xs = np.quantile(p, grid)
        ys = np.quantile(spread_labels(y), grid)
        keep = np.r_[True, np.diff(xs) > 1e-9]   # equal prediction quantiles: one knot
        xs, ys = xs[keep], np.maximum.accumulate(ys[keep])
        return cls(tuple(float(v) for v in xs), tuple(float(v) for v in ys))

    def __call__(self, values: np.ndarray) -> np.ndarray:
        if len(self.x) < 2:
            return np.asarray(values, np.float64)
        return np.clip(np.interp(np.asarray(values, np.float64), self.x, self.y), 0.0, 5.0)

    def to_json(self) -> dict[str, list[float]]:
        return {"x": list(self.x), "y": list(self.y)}

    @classmethod
    def from_json(cls, data: Mapping[str, Sequence[float]]) -> QuantileMap:
        x, y = tuple(map(float, data["x"])), tuple(map(float, data["y"]))
        if len(x) != len(y) or any(b < a for a, b in zip(x, x[1:], strict=False)):
            raise ValueError("calibration: x and y must be equally long, x increasing")
        return cls(x, y)


def spread_labels(labels: np.ndarray) -> np.ndarray:
    """Integer labels spread evenly over (value − 0.5, value + 0.5), in sorted order."""
    y = np.sort(np.asarray(labels, np.float64))
    out = np.empty_like(y)
    for value in np.unique(y):
        rows = np.flatnonzero(y == value)
        out[rows] = value - 0.5 + (np.arange(len(rows)) + 0.5) / len(rows)
    return np.clip(out, 0.0, 5.0)


def spread_report(predicted: Sequence[float], labels: Sequence[int], kinds: Sequence[str]
                  ) -> dict[str, Any]:
    """How far predictions spread against the labels: over rows and over kind means."""
    p = np.asarray(predicted, np.float64)
    y = np.asarray(labels, np.float64)
    k = np.asarray(kinds)
    groups = sorted(set(k.tolist()))
    p_means = np.array([p[k == g].mean() for g in groups])
    y_means = np.array([y[k == g].mean() for g in groups])
    return {"std_predicted": float(p.std()), "std_labels": float(y.std()),
            "kind_means_std_predicted": float(p_means.std()),
            "kind_means_std_labels": float(y_means.std())}
