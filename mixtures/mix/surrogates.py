"""Surrogates: predict a proxy run's loss from its mixture (and MDE features).

All follow the scikit-learn convention (constructor stores params, ``fit(X, y)`` returns
self, ``predict(X)``). Inputs: the first ``n_weights`` columns of X are mixture weights
(default: all columns), the rest are extra features (MDE), standardized.

Why these: with tens of runs, flexible models (LightGBM) cannot split (min_child_samples
20 > runs per leaf) and rank poorly; what works is structure. Losses fall roughly linearly
in log(weight) (diminishing returns of a domain's share) and vary smoothly over the simplex,
so ``loglinear`` (ridge on [w, log(w + eps)]) and a GP on sqrt(w) (the Hellinger embedding
of the simplex, where Euclidean distance matches distribution distance) both beat the
RegMix linear/LightGBM baselines at small run counts; ``ensemble`` averages the two.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import torch
from scipy.stats import spearmanr

from metamix.mixtures.mix.names import SURROGATES

#: RegMix's LightGBM settings (regression_fitting/regression.ipynb). RegMix also used
#: early stopping (3 rounds) on its held-out set; with a handful of runs there is no spare
#: validation split, so we run all 1000 iterations. One thread: tables are tiny, and
#: results are then bit-identical across machines.
REGMIX_LGBM_PARAMS: dict[str, Any] = {
    "boosting_type": "gbdt", "objective": "regression", "n_estimators": 1000,
    "learning_rate": 1e-2, "random_state": 42, "verbosity": -1, "n_jobs": 1,
}


class Surrogate(Protocol):
    def fit(self, X: np.ndarray, y: np.ndarray) -> Surrogate: ...
    def predict(self, X: np.ndarray) -> np.ndarray: ...


def _split(X: np.ndarray, n_weights: int | None) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    k = X.shape[1] if n_weights is None else n_weights
    return X[:, :k], X[:, k:]


class _ExtraScaler:
    """Standardize extra (MDE) columns with training statistics."""

    def fit(self, extra: np.ndarray) -> _ExtraScaler:
        self.mean_ = extra.mean(axis=0) if extra.size else np.zeros(extra.shape[1])
        self.scale_ = np.where(extra.std(axis=0) > 0, extra.std(axis=0), 1.0) if extra.size \
            else np.ones(extra.shape[1])
        return self

    def transform(self, extra: np.ndarray) -> np.ndarray:
        return (extra - self.mean_) / self.scale_


class LinearSurrogate:
    """RegMix's linear regression on raw weights (the baseline), or, with ``log_features``,
    ridge (alpha by leave-one-out CV) on [w, log(w + eps)] (+ extra features)."""

    def __init__(self, log_features: bool = False, eps: float = 1e-3,
                 n_weights: int | None = None) -> None:
        self.log_features = log_features
        self.eps = eps
        self.n_weights = n_weights

    def _features(self, X: np.ndarray) -> np.ndarray:
        w, extra = _split(X, self.n_weights)
        parts = [w, np.log(w + self.eps)] if self.log_features else [w]
        return np.hstack(parts + [self._scaler.transform(extra)])

    def fit(self, X: np.ndarray, y: np.ndarray) -> LinearSurrogate:
        from sklearn.linear_model import LinearRegression, RidgeCV

        self._scaler = _ExtraScaler().fit(_split(X, self.n_weights)[1])
        self.model_ = (RidgeCV(alphas=np.logspace(-4, 3, 30)) if self.log_features
                       else LinearRegression())
        self.model_.fit(self._features(X), np.asarray(y, dtype=np.float64))
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict(self._features(X))


class LightGBMSurrogate:
    """LightGBM with RegMix's settings (see ``REGMIX_LGBM_PARAMS``); ``params`` override."""

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        self.params = params

    def fit(self, X: np.ndarray, y: np.ndarray) -> LightGBMSurrogate:
        import lightgbm

        self.model_ = lightgbm.LGBMRegressor(**{**REGMIX_LGBM_PARAMS, **(self.params or {})})
        self.model_.fit(np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64))
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict(np.asarray(X, dtype=np.float64))


class GPSurrogate:
    """BoTorch SingleTaskGP on sqrt(weights) (+ standardized extra features); see
    ``bo_models.fit_gp``. ``model_`` is the fitted GP (on -loss, as BoTorch maximizes)."""

    def __init__(self, kernel: str = "matern", n_weights: int | None = None,
                 init: dict | None = None, maxiter: int | None = None) -> None:
        self.kernel = kernel
        self.n_weights = n_weights
        self.init = init
        self.maxiter = maxiter

    def fit(self, X: np.ndarray, y: np.ndarray) -> GPSurrogate:
        from metamix.mixtures.mix.bo_models import fit_gp

        w, extra = _split(X, self.n_weights)
        self._scaler = _ExtraScaler().fit(extra)
        self.model_ = fit_gp(w, y, self._scaler.transform(extra), kernel=self.kernel,
                             init=self.init, maxiter=self.maxiter)
        return self

    @classmethod
    def from_model(cls, model: Any, n_weights: int) -> GPSurrogate:
        """Wrap a GP ``fit_gp`` already fitted on weights alone (no extra columns), e.g.
        the acquisition's, so an ensemble shares it instead of fitting its own."""
        self = cls(n_weights=n_weights)
        self._scaler = _ExtraScaler().fit(np.zeros((1, 0)))
        self.model_ = model
        return self

    def posterior(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation of the latent loss."""
        w, extra = _split(X, self.n_weights)
        # n x 1 x d: one marginal posterior per point; a joint posterior over a chunk of
        # 10^4 points costs a dense covariance (20-40 s per 10^5 candidates, vs ~1 s).
        inputs = torch.as_tensor(np.hstack([w, self._scaler.transform(extra)]),
                                 dtype=torch.float64)[:, None, :]
        with torch.no_grad():
            post = self.model_.posterior(inputs)
            mean = -post.mean.reshape(-1).numpy()
            return mean, post.variance.clamp_min(0).sqrt().reshape(-1).numpy()

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.concatenate([self.posterior(X[i:i + 8192])[0]
                               for i in range(0, len(X), 8192)])


class EnsembleSurrogate:
    """Mean of member predictions: errors of a parametric and a kernel model differ."""

    def __init__(self, members: list[Surrogate]) -> None:
        self.members = members

    def fit(self, X: np.ndarray, y: np.ndarray) -> EnsembleSurrogate:
        for member in self.members:
            member.fit(X, y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.mean([m.predict(X) for m in self.members], axis=0)


class MultiTargetSurrogate:
    """One surrogate per loss column; ``predict`` is the ``target_weights`` average.

    ``warm_from``: a MultiTargetSurrogate of the same kind fitted on similar data (all
    runs, when this one is a K-fold fold): each column's GP starts from its fitted
    hyper-parameters and stops after ``warm_maxiter`` iterations (see ``warm_start``).
    """

    def __init__(self, make: Callable[[], Surrogate], target_weights: np.ndarray,
                 warm_from: MultiTargetSurrogate | None = None,
                 warm_maxiter: int | None = None) -> None:
        self.make = make
        self.target_weights = target_weights
        self.warm_from = warm_from
        self.warm_maxiter = warm_maxiter

    def fit(self, X: np.ndarray, Y: np.ndarray) -> MultiTargetSurrogate:
        Y = np.asarray(Y, dtype=np.float64)
        models = [self.make() for _ in range(Y.shape[1])]
        if self.warm_from is not None:
            for model, fitted in zip(models, self.warm_from.models_, strict=True):
                warm_start(model, fitted, self.warm_maxiter)
        self.models_ = [m.fit(X, Y[:, j]) for j, m in enumerate(models)]
        return self

    def predict_each(self, X: np.ndarray) -> np.ndarray:
        return np.column_stack([m.predict(X) for m in self.models_])

    def predict(self, X: np.ndarray) -> np.ndarray:
        w = np.asarray(self.target_weights, dtype=np.float64)
        return self.predict_each(X) @ (w / w.sum())




def gp_members(model: Surrogate) -> list[GPSurrogate]:
    """The GPs inside a surrogate (itself, an ensemble's, each target column's), in the
    order they are built: what the fit cache stores and warm-starts."""
    if isinstance(model, GPSurrogate):
        return [model]
    if isinstance(model, EnsembleSurrogate):
        return [gp for m in model.members for gp in gp_members(m)]
    if isinstance(model, MultiTargetSurrogate):
        return [gp for m in getattr(model, "models_", []) for gp in gp_members(m)]
    return []


def make_surrogate(name: str, n_weights: int | None = None) -> Surrogate:
    """Build a surrogate by CLI name (see ``SURROGATES``)."""
    if name == "linear":
        return LinearSurrogate(n_weights=n_weights)
    if name == "loglinear":
        return LinearSurrogate(log_features=True, n_weights=n_weights)
    if name == "lightgbm":
        return LightGBMSurrogate()
    if name == "gp":
        return GPSurrogate(n_weights=n_weights)
    if name == "ensemble":
        return EnsembleSurrogate([LinearSurrogate(log_features=True, n_weights=n_weights),
                                  GPSurrogate(n_weights=n_weights)])
    raise ValueError(f"unknown surrogate {name!r} (choose from {', '.join(SURROGATES)})")


def spearman(pred: np.ndarray, actual: np.ndarray) -> float:
    """Spearman rho; NaN when predictions are constant (e.g. LightGBM could not split)."""
    pred = np.asarray(pred)
    if np.ptp(pred) == 0 or np.ptp(actual) == 0:
        return float("nan")
    return float(spearmanr(pred, actual).statistic)


#: L-BFGS iterations of a K-fold GP warm-started from the all-runs fit; 0 = keep the
#: all-runs hyper-parameters and only condition on the fold's runs (the usual GP
#: cross-validation shortcut: a fold is 80% of the same runs, so the fitted length scales
#: barely move, and the held-out losses still never enter the prediction). Out-of-fold
#: Spearman matches cold per-fold fits within 0.01 on the demo and RegMix at a fraction of
#: the time (bench/mf_kfold_speed.py).
WARM_MAXITER = 0


def warm_start(model: Surrogate, fitted: Surrogate, maxiter: int | None = WARM_MAXITER) -> None:
    """Start ``model``'s GP(s) from ``fitted``'s hyper-parameters (same kind of surrogate)."""
    from metamix.mixtures.mix.bo_models import hyperparameters

    if isinstance(model, GPSurrogate) and isinstance(fitted, GPSurrogate):
        model.init, model.maxiter = hyperparameters(fitted.model_), maxiter
    elif isinstance(model, EnsembleSurrogate) and isinstance(fitted, EnsembleSurrogate):
        for member, done in zip(model.members, fitted.members, strict=True):
            warm_start(member, done, maxiter)
    elif isinstance(model, MultiTargetSurrogate) and isinstance(fitted, MultiTargetSurrogate):
        model.warm_from, model.warm_maxiter = fitted, maxiter


def kfold_predictions(make: Callable[[], Surrogate], X: np.ndarray, y: np.ndarray,
                      k: int = 5, seed: int = 0, warm: bool = True,
                      ) -> tuple[np.ndarray, Surrogate | None]:
    """Out-of-fold predictions over k seeded folds, and (``warm``) the all-runs fit.

    With ``warm``, each fold's GP reuses the all-runs fit's hyper-parameters
    (``warm_start``, ``WARM_MAXITER``): a cold fit per fold made the GP comparison most of
    ``mix run``'s time (issue 13).
    """
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(y) < max(k, 3):
        raise ValueError(f"need at least {max(k, 3)} runs for {k}-fold evaluation, got {len(y)}")
    full = make().fit(X, y) if warm else None
    folds = np.array_split(np.random.default_rng(seed).permutation(len(y)), k)
    pred = np.empty(len(y))
    for held in folds:
        train = np.setdiff1d(np.arange(len(y)), held)
        model = make()
        if full is not None:
            warm_start(model, full)
        pred[held] = model.fit(X[train], y[train]).predict(X[held])
    return pred, full


def kfold_evaluate(make: Callable[[], Surrogate], X: np.ndarray, y: np.ndarray,
                   k: int = 5, seed: int = 0, warm: bool = True) -> dict[str, float]:
    """Spearman and MSE of the out-of-fold predictions (``kfold_predictions``)."""
    pred, _ = kfold_predictions(make, X, y, k, seed, warm)
    y = np.asarray(y, dtype=np.float64)
    return {"spearman": spearman(pred, y), "mse": float(np.mean((pred - y) ** 2))}
