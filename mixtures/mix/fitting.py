"""Surrogate comparison for ``run_mix``: every surrogate with and without MDE features.

All surrogates are multi-target (one model per validation-domain loss, combined with the
objective weights), so the objective can be re-weighted without refitting and the emitted
file can show predicted per-domain losses. K-fold scores are out-of-fold Spearman and MSE of
the *objective*; the best is the highest Spearman (ties: lower MSE), because the search only
needs the ranking of mixtures to be right.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from metamix.base.errors import UserError
from metamix.mixtures.mix.experts import Experts
from metamix.mixtures.mix.mde import mde_features_subsampled
from metamix.mixtures.mix.surrogates import (
    WARM_MAXITER,
    EnsembleSurrogate,
    MultiTargetSurrogate,
    make_surrogate,
    spearman,
)


def objective_weights(spec: str | dict[str, float], val_domains: list[str],
                      token_domains: np.ndarray) -> np.ndarray:
    """Weights of the validation-domain losses: equal, token-proportional, or explicit."""
    if spec == "equal":
        return np.ones(len(val_domains)) / len(val_domains)
    if spec == "tokens":
        counts = np.bincount(token_domains, minlength=len(val_domains)).astype(np.float64)
        return counts / counts.sum()
    unknown = sorted(set(spec) - set(val_domains))
    if unknown:
        raise UserError(f"mix.objective: unknown validation domain(s) {unknown}; "
                        f"known: {val_domains}")
    w = np.array([float(spec.get(d, 0.0)) for d in val_domains])
    return w / w.sum()


class MdeFeaturizer:
    """weights -> [weights, MDE losses on a fixed token subsample] (train and search alike,
    so the surrogate never sees features computed two different ways)."""

    def __init__(self, experts: Experts, per_domain: int | None, seed: int) -> None:
        self.experts = experts
        self.per_domain = per_domain
        self.seed = seed

    def __call__(self, weights: np.ndarray) -> np.ndarray:
        w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
        mde = mde_features_subsampled(self.experts.probs, self.experts.token_domains, w,
                                      per_domain=self.per_domain, seed=self.seed)
        return np.hstack([w, mde.astype(np.float64)])


@dataclass(frozen=True)
class Variant:
    """One surrogate configuration: model name, with or without MDE inputs."""

    name: str
    mde: bool

    @property
    def label(self) -> str:
        return f"{self.name}+mde" if self.mde else self.name


@dataclass
class FittedSurrogate:
    variant: Variant
    model: MultiTargetSurrogate
    featurize: Callable[[np.ndarray], np.ndarray]

    def predict(self, weights: np.ndarray) -> np.ndarray:
        return self.model.predict(self.featurize(np.atleast_2d(weights)))

    def predict_each(self, weights: np.ndarray) -> np.ndarray:
        return self.model.predict_each(self.featurize(np.atleast_2d(weights)))


def _maker(variant: Variant, n_domains: int) -> Callable[[], object]:
    return lambda: make_surrogate(variant.name, n_weights=n_domains)


def kfold_objective(make: Callable[[], object], X: np.ndarray, Y: np.ndarray,
                    target_weights: np.ndarray, k: int, seed: int,
                    ) -> tuple[dict[str, float], MultiTargetSurrogate]:
    """Out-of-fold objective predictions of a multi-target surrogate (Spearman, MSE), and
    the surrogate fitted on all runs. Each fold's GPs reuse the all-runs fit's
    hyper-parameters (``surrogates.warm_start``), which cut the GP comparison (~72% of
    ``mix run``) by the number of folds with the same Spearman (issue 13)."""
    pred, full = _kfold_predictions(make, X, Y, target_weights, k, seed)
    return _scores(pred, Y @ (target_weights / target_weights.sum())), full


def _scores(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    return {"spearman": spearman(pred, y), "mse": float(np.mean((pred - y) ** 2))}


def _kfold_predictions(make: Callable[[], object], X: np.ndarray, Y: np.ndarray,
                       target_weights: np.ndarray, k: int, seed: int,
                       ) -> tuple[np.ndarray, MultiTargetSurrogate]:
    full = MultiTargetSurrogate(make, target_weights).fit(X, Y)
    folds = np.array_split(np.random.default_rng(seed).permutation(len(Y)), k)
    pred = np.empty(len(Y))
    for held in folds:
        train = np.setdiff1d(np.arange(len(Y)), held)
        model = MultiTargetSurrogate(make, target_weights, warm_from=full,
                                     warm_maxiter=WARM_MAXITER).fit(X[train], Y[train])
        pred[held] = model.predict(X[held])
    return pred, full


def _ensemble_of(loglinear: MultiTargetSurrogate, gp: MultiTargetSurrogate,
                 make: Callable[[], object], target_weights: np.ndarray,
                 ) -> MultiTargetSurrogate:
    """The ensemble fitted on all runs, built from its members' all-runs fits."""
    out = MultiTargetSurrogate(make, target_weights)
    out.models_ = [EnsembleSurrogate([a, b])
                   for a, b in zip(loglinear.models_, gp.models_, strict=True)]
    return out


def compare_surrogates(names: list[str], weights: np.ndarray, losses: np.ndarray,
                       target_weights: np.ndarray, mde: MdeFeaturizer, folds: int,
                       seed: int) -> tuple[dict[str, dict[str, float]], Variant, FittedSurrogate]:
    """K-fold table {label: {spearman, mse, seconds}} over all variants, the best variant
    and its fit on all runs (no refit needed)."""
    if len(weights) < max(folds, 3) + 1:
        raise UserError(f"mix: {len(weights)} successful runs are too few for {folds}-fold "
                        "surrogate evaluation")
    n_domains = weights.shape[1]
    inputs = {False: weights, True: mde(weights)}
    table: dict[str, dict[str, float]] = {}
    fits: dict[str, MultiTargetSurrogate] = {}
    variants = [Variant(n, m) for n in names for m in (False, True)]
    y = losses @ (target_weights / target_weights.sum())
    preds: dict[str, np.ndarray] = {}
    # the ensemble is the mean of loglinear and gp fitted the same way (same folds, same
    # warm starts): with both compared, it is derived from their fits, not fitted again
    derive = "ensemble" in names and {"gp", "loglinear"} <= set(names)
    for v in sorted(variants, key=lambda v: v.name == "ensemble"):
        torch.manual_seed(seed)  # a GP fit that fails retries from sampled priors
        start = time.perf_counter()
        if v.name == "ensemble" and derive:
            parts = [Variant(n, v.mde).label for n in ("loglinear", "gp")]
            preds[v.label] = (preds[parts[0]] + preds[parts[1]]) / 2
            fits[v.label] = _ensemble_of(fits[parts[0]], fits[parts[1]],
                                         _maker(v, n_domains), target_weights)
        else:
            preds[v.label], fits[v.label] = _kfold_predictions(
                _maker(v, n_domains), inputs[v.mde], losses, target_weights, folds, seed)
        table[v.label] = {**_scores(preds[v.label], y),
                          "seconds": time.perf_counter() - start}
    table = {v.label: table[v.label] for v in variants}  # the configured order

    def rank(v: Variant) -> tuple[float, float]:
        rho = table[v.label]["spearman"]
        return (-rho if math.isfinite(rho) else math.inf, table[v.label]["mse"])

    best = min(variants, key=rank)
    featurize: Callable[[np.ndarray], np.ndarray] = mde if best.mde else (lambda w: w)
    return table, best, FittedSurrogate(best, fits[best.label], featurize)
