"""Which surrogate to search with: K-fold on the user's own table, and honest warnings.

``mix suggest`` and ``mix optimize`` no longer assume the GP is best: on a noisy target
the loglinear ridge ranked mixtures better (issue 16: 5-fold Spearman 0.72 vs 0.62), on
RegMix the GP does. ``choose_surrogate`` K-fold scores the candidates on the runs and
picks the highest Spearman (ties: lower MSE); too few runs to rank them gives the default
with the reason. ``span_warnings`` flags proposals outside what the runs cover, and
``constant_warning`` a surrogate that predicts one value everywhere (e.g. LightGBM that
could not split), so a user knows when a proposal rests on extrapolation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from metamix.mixtures.mix.surrogates import (
    GPSurrogate,
    Surrogate,
    kfold_predictions,
    make_surrogate,
    spearman,
)

#: Runs below which K-fold cannot rank surrogates (folds of one or two runs).
MIN_RUNS_TO_CHOOSE = 8
#: How far outside the runs' range a proposed weight may be before it is flagged.
SPAN_TOLERANCE = 0.02


@dataclass
class SurrogateChoice:
    name: str
    reason: str
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    fitted: dict[str, Surrogate] = field(default_factory=dict)  # all-runs fits, reusable


def _make(name: str, n_weights: int, gp_init: dict | None, gp_maxiter: int | None):
    def make() -> Surrogate:
        model = make_surrogate(name, n_weights)
        for gp in [model, *getattr(model, "members", [])]:
            if isinstance(gp, GPSurrogate):
                gp.init, gp.maxiter = gp_init, gp_maxiter
        return model
    return make


def choose_surrogate(X: np.ndarray, y: np.ndarray, candidates: tuple[str, ...],
                     default: str, n_weights: int, folds: int = 5, seed: int = 0,
                     gp_init: dict | None = None, gp_maxiter: int | None = None,
                     ) -> SurrogateChoice:
    """K-fold Spearman of every candidate on (X, y); the best, or ``default`` when the
    runs are too few or no candidate ranks them (constant predictions).

    ``ensemble`` is scored from the gp and loglinear out-of-fold predictions when both
    are candidates (it is their mean, fitted the same way). ``gp_init``/``gp_maxiter``
    warm-start the all-runs GP fit (a BO loop passes the previous step's)."""
    n = len(y)
    if n < MIN_RUNS_TO_CHOOSE:
        return SurrogateChoice(default, f"{n} runs are too few to compare surrogates "
                               f"(K-fold needs {MIN_RUNS_TO_CHOOSE}); using {default}")
    k = min(folds, n)
    preds: dict[str, np.ndarray] = {}
    fitted: dict[str, Surrogate] = {}
    derive = "ensemble" in candidates and {"gp", "loglinear"} <= set(candidates)
    for name in candidates:
        if name == "ensemble" and derive:
            continue
        preds[name], fitted[name] = kfold_predictions(
            _make(name, n_weights, gp_init, gp_maxiter), X, y, k, seed)
    if derive:
        preds["ensemble"] = (preds["gp"] + preds["loglinear"]) / 2
    scores = {name: {"spearman": spearman(preds[name], y),
                     "mse": float(np.mean((preds[name] - y) ** 2))} for name in candidates}
    choice = SurrogateChoice(default, "", scores, fitted=fitted)
    usable = {m: s for m, s in scores.items() if math.isfinite(s["spearman"])}
    for name in sorted(set(scores) - set(usable)):
        choice.warnings.append(f"{name} predicts one value for every held-out run "
                               "(Spearman undefined); not used")
    if not usable:
        choice.reason = f"no surrogate ranks the runs out of fold; using {default}"
        return choice
    best = min(usable, key=lambda m: (-usable[m]["spearman"], usable[m]["mse"]))
    choice.name = best
    others = ", ".join(f"{m} {s['spearman']:.3f}" for m, s in scores.items() if m != best)
    choice.reason = (f"{k}-fold Spearman {usable[best]['spearman']:.3f} on {n} runs"
                     + (f" (vs {others})" if others else ""))
    return choice


def span_warnings(domains: list[str], proposals: np.ndarray, runs: np.ndarray,
                  tolerance: float = SPAN_TOLERANCE) -> list[str]:
    """One line per proposal and domain whose weight lies outside the runs' range."""
    lo, hi = runs.min(axis=0), runs.max(axis=0)
    out = []
    for i, row in enumerate(np.atleast_2d(proposals)):
        for j, w in enumerate(row):
            if w > hi[j] + tolerance or w < lo[j] - tolerance:
                side = f"above every run (max {hi[j]:.3f})" if w > hi[j] else \
                    f"below every run (min {lo[j]:.3f})"
                out.append(f"#{i + 1}: {domains[j]} = {w:.3f} is {side}: the surrogate "
                           "extrapolates there")
    return out


def constant_warning(name: str, predictions: np.ndarray) -> str | None:
    """A warning when ``predictions`` (over many candidates) are all the same value."""
    predictions = np.asarray(predictions, dtype=np.float64)
    if predictions.size and np.ptp(predictions) <= 1e-12 * max(1.0, abs(predictions[0])):
        return (f"{name} predicts the same loss ({predictions[0]:.4g}) for every candidate: "
                "its choice among them is arbitrary")
    return None
