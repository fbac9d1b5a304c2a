"""Regress proxy loss on score weights, cross-validate it, and search the weight simplex.

Meta-rater (Zhuang et al. 2025): K proxy runs give (weights -> loss) pairs; a LightGBM
regressor interpolates between them, and averaging the top-k of 10^5-10^6 predicted
Dirichlet samples gives weights that are robust to the regressor's noise (one argmin of a
tree model would sit on a single leaf's corner). A ridge regression is the linear baseline
that tells whether the trees earn their keep.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
from scipy.stats import spearmanr
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold

LGBM_DEFAULTS: dict[str, Any] = {
    "n_estimators": 300, "learning_rate": 0.05, "num_leaves": 15, "min_child_samples": 5,
    "subsample": 0.8, "subsample_freq": 1, "colsample_bytree": 0.9, "reg_lambda": 1.0,
    "n_jobs": 1, "verbose": -1, "deterministic": True, "force_row_wise": True,
}


def make_regressor(kind: str, seed: int, params: dict[str, Any] | None = None) -> Any:
    if kind == "lightgbm":
        return lgb.LGBMRegressor(**{**LGBM_DEFAULTS, "random_state": seed, **(params or {})})
    if kind == "ridge":
        return Ridge(alpha=(params or {}).get("alpha", 1e-3))
    raise ValueError(f"unknown regressor {kind!r}")


@dataclass(frozen=True)
class CVScore:
    """Out-of-fold agreement of predicted and actual loss (pooled over all folds).

    The regressor learns from the fit half of the targets; ``report_spearman`` compares its
    out-of-fold predictions with the report half, which it never saw."""

    spearman: float
    mse: float
    fold_spearman: tuple[float, ...]
    oof: np.ndarray
    report_spearman: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"spearman": self.spearman, "mse": self.mse,
                "fold_spearman": list(self.fold_spearman),
                "report_spearman": self.report_spearman}


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def cross_validate(x: np.ndarray, y: np.ndarray, kind: str, *, folds: int, seed: int,
                   params: dict[str, Any] | None = None, y_report: np.ndarray | None = None
                   ) -> CVScore:
    """K-fold out-of-fold predictions; Spearman/MSE on the pooled predictions."""
    folds = max(2, min(folds, len(y)))
    oof = np.empty(len(y))
    per_fold = []
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(x):
        model = make_regressor(kind, seed, params).fit(x[train], y[train])
        oof[test] = model.predict(x[test])
        per_fold.append(_spearman(oof[test], y[test]))
    report = None if y_report is None else _spearman(oof, y_report)
    return CVScore(_spearman(oof, y), float(np.mean((oof - y) ** 2)), tuple(per_fold), oof,
                   report)


def importance(model: Any, names: list[str]) -> dict[str, float]:
    """Share of each feature in the model: LightGBM split gain, or |coefficient| for ridge."""
    if isinstance(model, lgb.LGBMRegressor):
        gain = model.booster_.feature_importance(importance_type="gain").astype(np.float64)
    else:
        gain = np.abs(np.asarray(model.coef_, dtype=np.float64))
    total = gain.sum()
    share = gain / total if total > 0 else np.zeros_like(gain)
    return {n: float(g) for n, g in zip(names, share, strict=True)}


@dataclass(frozen=True)
class SearchResult:
    features: np.ndarray          # mean of the top-k predicted samples (|.| sums to 1)
    predicted_loss: float         # the regressor's prediction at ``features``
    top_k_mean_predicted: float   # mean prediction over the top-k samples
    n_samples: int


Sampler = Callable[[np.random.Generator, int], np.ndarray]


def search_weights(model: Any, sample: Sampler, *, n_samples: int, top_k: int, seed: int,
                   batch: int = 100_000) -> SearchResult:
    """Average the ``top_k`` samples (rows of ``sample(rng, n)``) with the lowest predicted
    loss."""
    rng = np.random.default_rng(seed)
    best_w: np.ndarray | None = None
    best_y = np.zeros(0)
    for start in range(0, n_samples, batch):
        w = sample(rng, min(batch, n_samples - start))
        y = model.predict(w)
        pool_w = w if best_w is None else np.vstack([best_w, w])
        pool_y = np.concatenate([best_y, y])
        keep = np.argsort(pool_y, kind="stable")[:top_k]
        best_w, best_y = pool_w[keep], pool_y[keep]
    assert best_w is not None
    mean_w = best_w.mean(axis=0)
    mean_w /= np.abs(mean_w).sum()
    return SearchResult(mean_w, float(model.predict(mean_w[None, :])[0]), float(best_y.mean()),
                        n_samples)
