"""The head every embedding PRRC rater shares: document vector + text statistics → 0–5.

Two regressors, blended: ridge regression over the standardized vector and statistics
(smooth, uses every embedding dimension), and gradient-boosted trees over the statistics
alone (thresholds such as "most lines are short" that a linear map cannot draw). Both
regress the 0–5 label directly: the scorer ships a value whose order is what selection uses,
and a regression keeps the order of the label scale that a multinomial classifier ignores.

The ridge strength, the number of trees and the blend weight are chosen by cross-validation
grouped by *kind* of text (each fold holds out whole kinds), so the head is tuned for text
unlike its training data, not for more of the same. Heads are saved as JSON (standardizer,
ridge coefficients, LightGBM's text model): no pickles, and a few hundred kB.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from metamix.base.atomic import write_bytes_atomic
from metamix.scorers.prrc.raters_metrics import spearman
from metamix.scorers.prrc.raters_text_stats import STAT_NAMES

HEAD_FORMAT = "metamix-prrc-head/1"


class HeadParams(BaseModel):
    """Search space and tree settings. Small trees and a slow learning rate because a few
    thousand labels over a dozen kinds overfit anything deeper."""

    model_config = ConfigDict(extra="forbid")

    alphas: tuple[float, ...] = Field(
        default=(1.0, 10.0, 100.0, 1_000.0, 10_000.0), description="ridge penalties tried")
    tree_counts: tuple[int, ...] = Field(
        default=(25, 50, 100, 200), description="LightGBM tree counts tried")
    blends: tuple[float, ...] = Field(default=(0.0, 0.25, 0.5, 0.75, 1.0),
                                      description="weight of the ridge part (1 = ridge only)")
    learning_rate: float = Field(default=0.1, gt=0, description="LightGBM learning rate")
    num_leaves: int = Field(default=7, ge=2, description="LightGBM leaves per tree")
    min_child_samples: int = Field(default=20, ge=1, description="LightGBM rows per leaf, at least")
    inner_folds: int = Field(default=4, ge=2, description="folds of the tuning cross-validation")
    seed: int = Field(default=0, description="seed of folds and trees")


def _tree_params(params: HeadParams) -> dict[str, Any]:
    return {"objective": "regression", "learning_rate": params.learning_rate,
            "num_leaves": params.num_leaves, "min_data_in_leaf": params.min_child_samples,
            "min_data_in_bin": 1, "bagging_fraction": 0.8, "bagging_freq": 1,
            "feature_fraction": 0.8, "lambda_l2": 1.0, "seed": params.seed,
            "deterministic": True, "force_row_wise": True, "num_threads": 1, "verbose": -1}


class FeatureHead:
    """``predict(vectors, stats)`` = blend · ridge + (1 − blend) · trees, clipped to 0–5."""

    def __init__(self, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray,
                 intercept: float, trees: str | None, blend: float,
                 meta: dict[str, Any]) -> None:
        self.mean = np.asarray(mean, np.float64)
        self.scale = np.asarray(scale, np.float64)
        self.coef = np.asarray(coef, np.float64)
        self.intercept = float(intercept)
        self.trees = trees
        self.blend = float(blend)
        self.meta = dict(meta)
        self._booster: Any = None
        # A head reads the statistics it was trained on, by name, out of today's full set.
        names = list(self.meta.get("stat_names", STAT_NAMES))
        unknown = [n for n in names if n not in STAT_NAMES]
        if unknown:
            raise ValueError(f"head was trained on text statistics {unknown} that this "
                             "metamix does not compute; retrain it (metamix train-rater)")
        self._stat_columns = (None if names == list(STAT_NAMES)
                              else np.array([STAT_NAMES.index(n) for n in names]))

    @property
    def encoder(self) -> str:
        return str(self.meta.get("encoder", ""))

    def _ridge(self, vectors: np.ndarray, stats: np.ndarray) -> np.ndarray:
        x = np.hstack([np.asarray(vectors, np.float64), np.asarray(stats, np.float64)])
        return np.clip(((x - self.mean) / self.scale) @ self.coef + self.intercept, 0.0, 5.0)

    def _tree_part(self, stats: np.ndarray) -> np.ndarray:
        if self._booster is None:
            import lightgbm as lgb

            self._booster = lgb.Booster(model_str=self.trees)
        return np.clip(self._booster.predict(np.asarray(stats, np.float64), num_threads=1),
                       0.0, 5.0)

    def predict(self, vectors: np.ndarray, stats: np.ndarray) -> np.ndarray:
        """``stats``: every statistic of ``text_statistics`` (the head picks its own)."""
        if self._stat_columns is not None:
            stats = np.asarray(stats)[:, self._stat_columns]
        width = np.shape(vectors)[1] + np.shape(stats)[1]
        if width != len(self.coef) or len(vectors) != len(stats):
            raise ValueError(f"head expects {len(self.coef)} features per row, got "
                             f"{np.shape(vectors)} vectors and {np.shape(stats)} statistics "
                             f"(encoder {self.encoder!r})")
        if len(vectors) == 0:
            return np.zeros(0)
        out = np.zeros(len(vectors))
        if self.blend > 0:
            out += self.blend * self._ridge(vectors, stats)
        if self.blend < 1:
            out += (1.0 - self.blend) * self._tree_part(stats)
        return np.clip(out, 0.0, 5.0)

    def to_json(self) -> dict[str, Any]:
        return {"format": HEAD_FORMAT, **self.meta, "mean": self.mean.tolist(),
                "scale": self.scale.tolist(), "coef": self.coef.tolist(),
                "intercept": self.intercept, "blend": self.blend, "trees": self.trees}

    def save(self, path: Path) -> Path:
        write_bytes_atomic(path, json.dumps(self.to_json(), separators=(",", ":")).encode())
        return Path(path)

    @classmethod
    def load(cls, path: Path, expected_encoder: str | None = None) -> FeatureHead:
        """The head in ``path``; ``expected_encoder`` guards against vectors from another
        encoder (a rebuilt static model, or the MiniLM head fed static vectors)."""
        data = json.loads(Path(path).read_text())
        if data.get("format") != HEAD_FORMAT:
            raise ValueError(f"{path}: not a {HEAD_FORMAT} file (retrain: metamix train-rater)")
        if expected_encoder is not None and data.get("encoder") != expected_encoder:
            raise ValueError(f"{path}: head was trained on {data.get('encoder')!r} vectors, "
                             f"the encoder in use is {expected_encoder!r}; retrain it with "
                             "metamix train-rater")
        fields = ("mean", "scale", "coef", "intercept", "trees", "blend")
        meta = {k: v for k, v in data.items() if k not in (*fields, "format")}
        try:
            return cls(data["mean"], data["scale"], data["coef"], data["intercept"],
                       data["trees"], data["blend"], meta)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None


def _standardize(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    return mean, scale


def _fit_ridges(x: np.ndarray, y: np.ndarray, alphas: Sequence[float]
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Standardizer and one ridge fit per alpha, all from one SVD (scikit-learn solves a
    per-target alpha in one decomposition, so ``y`` is repeated once per alpha)."""
    from sklearn.linear_model import Ridge

    mean, scale = _standardize(x)
    targets = np.repeat(y[:, None], len(alphas), axis=1)
    model = Ridge(alpha=np.asarray(alphas, np.float64), solver="svd").fit((x - mean) / scale,
                                                                         targets)
    return mean, scale, np.atleast_2d(model.coef_), np.atleast_1d(model.intercept_)


def _fit_trees(stats: np.ndarray, y: np.ndarray, n_trees: int, params: HeadParams) -> Any:
    import lightgbm as lgb

    data = lgb.Dataset(stats, y, params={"verbose": -1}, free_raw_data=True)
    return lgb.train(_tree_params(params), data, num_boost_round=n_trees)


def _inner_folds(y: np.ndarray, groups: np.ndarray, params: HeadParams
                 ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Grouped folds when the training rows span ≥ 2 kinds, else shuffled K-fold."""
    from sklearn.model_selection import GroupKFold, KFold

    n_groups = len(np.unique(groups))
    if n_groups >= 2:
        splitter = GroupKFold(n_splits=min(params.inner_folds, n_groups))
        return list(splitter.split(y, y, groups))
    splitter = KFold(n_splits=min(params.inner_folds, len(y)), shuffle=True,
                     random_state=params.seed)
    return list(splitter.split(y))


def choose_hyperparameters(vectors: np.ndarray, stats: np.ndarray, y: np.ndarray,
                           groups: np.ndarray, params: HeadParams) -> dict[str, float]:
    """(alpha, trees, blend) with the highest Spearman of out-of-fold predictions.

    Each fold fits every alpha from one SVD and one forest of ``max(tree_counts)`` trees,
    read at every count, so the whole grid costs two fits per fold."""
    x = np.hstack([vectors, stats])
    ridge_oof = np.zeros((len(params.alphas), len(y)))
    tree_oof = np.zeros((len(params.tree_counts), len(y)))
    for train, held in _inner_folds(y, groups, params):
        mean, scale, coefs, intercepts = _fit_ridges(x[train], y[train], params.alphas)
        ridge_oof[:, held] = np.clip(coefs @ ((x[held] - mean) / scale).T + intercepts[:, None],
                                     0, 5)
        if any(b < 1 for b in params.blends):
            booster = _fit_trees(stats[train], y[train], max(params.tree_counts), params)
            for t, count in enumerate(params.tree_counts):
                tree_oof[t, held] = np.clip(booster.predict(stats[held], num_iteration=count,
                                                            num_threads=1), 0, 5)
    best: tuple[float, dict[str, float]] | None = None
    for a, alpha in enumerate(params.alphas):
        for t, count in enumerate(params.tree_counts):
            for blend in params.blends:
                if blend == 1 and t > 0:
                    continue  # trees unused: one entry per alpha is enough
                rho = spearman(blend * ridge_oof[a] + (1 - blend) * tree_oof[t], y)
                rho = rho if np.isfinite(rho) else -2.0
                if best is None or rho > best[0] + 1e-12:
                    best = (rho, {"alpha": alpha, "n_trees": count, "blend": blend,
                                  "inner_spearman": rho})
    assert best is not None
    return best[1]


def fit_head(vectors: np.ndarray, stats: np.ndarray, labels: Sequence[int],
             groups: Sequence[str], params: HeadParams, encoder: str) -> FeatureHead:
    """Tune by grouped cross-validation on these rows, then fit on all of them."""
    vectors = np.asarray(vectors, np.float64)
    stats = np.asarray(stats, np.float64)
    y = np.asarray(labels, np.float64)
    groups = np.asarray(groups)
    if len(np.unique(y)) < 2:
        raise ValueError("a PRRC head needs at least two distinct labels")
    chosen = choose_hyperparameters(vectors, stats, y, groups, params)
    mean, scale, coefs, intercepts = _fit_ridges(np.hstack([vectors, stats]), y,
                                                 [chosen["alpha"]])
    trees = None
    if chosen["blend"] < 1:
        trees = _fit_trees(stats, y, int(chosen["n_trees"]), params).model_to_string()
    meta = {"encoder": encoder, "stat_names": list(STAT_NAMES), "vector_dim": vectors.shape[1],
            **chosen, "n_train": len(y)}
    return FeatureHead(mean, scale, coefs[0], float(intercepts[0]), trees, chosen["blend"], meta)
