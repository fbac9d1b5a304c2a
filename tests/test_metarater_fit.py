"""Regressor + search on a synthetic problem whose optimum is known."""

from __future__ import annotations

import numpy as np

from metamix.mixtures.metarater.fit import (
    cross_validate,
    importance,
    make_regressor,
    search_weights,
)


def synthetic_problem(seed: int = 0, k: int = 128) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    w_star = np.array([0.5, 0.3, 0.15, 0.05])
    x = rng.dirichlet(np.ones(4), size=k)
    y = ((x - w_star) ** 2).sum(axis=1) + rng.normal(0, 0.002, size=k)
    return x, y, w_star


def test_search_recovers_known_optimum() -> None:
    x, y, w_star = synthetic_problem()
    model = make_regressor("lightgbm", seed=0).fit(x, y)
    found = search_weights(model, lambda rng, n: rng.dirichlet(np.ones(4), size=n),
                           n_samples=100_000, top_k=128, seed=1)
    assert np.abs(found.features - w_star).sum() < 0.2
    assert abs(found.features.sum() - 1) < 1e-12
    # Far better than the mean of the training samples (the uniform point).
    assert ((found.features - w_star) ** 2).sum() < 0.25 * ((0.25 - w_star) ** 2).sum()
    assert found.predicted_loss < np.quantile(y, 0.1)


def test_search_with_signed_samples_learns_the_sign_of_a_neutral_feature() -> None:
    rng = np.random.default_rng(3)
    x = rng.dirichlet(np.ones(2), size=200) * rng.choice([-1.0, 1.0], size=(200, 2))
    y = x[:, 0] + 0.1 * np.abs(x[:, 1])              # lower is better: a negative 1st weight
    model = make_regressor("ridge", seed=0).fit(x, y)

    def sample(r: np.random.Generator, n: int) -> np.ndarray:
        return r.dirichlet(np.ones(2), size=n) * r.choice([-1.0, 1.0], size=(n, 2))

    found = search_weights(model, sample, n_samples=20_000, top_k=64, seed=1)
    assert found.features[0] < -0.5 and abs(np.abs(found.features).sum() - 1) < 1e-12


def test_cross_validation_reports_high_spearman_on_a_learnable_target() -> None:
    x, y, _ = synthetic_problem(seed=2)
    tree = cross_validate(x, y, "lightgbm", folds=5, seed=0)
    linear = cross_validate(x, y, "ridge", folds=5, seed=0)
    assert tree.spearman > 0.8 and len(tree.fold_spearman) == 5
    assert tree.mse < np.var(y)
    assert np.isfinite(linear.spearman)
    noise = cross_validate(x, np.random.default_rng(0).normal(size=len(y)), "lightgbm",
                           folds=5, seed=0)
    assert abs(noise.spearman) < 0.3


def test_importance_points_at_the_informative_feature() -> None:
    rng = np.random.default_rng(0)
    x = rng.dirichlet(np.ones(3), size=200)
    y = (x[:, 1] - 0.6) ** 2
    for kind in ("lightgbm", "ridge"):
        imp = importance(make_regressor(kind, 0).fit(x, y), ["a", "b", "c"])
        assert abs(sum(imp.values()) - 1) < 1e-9 and max(imp, key=imp.get) == "b"
