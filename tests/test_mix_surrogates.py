"""Surrogates on a synthetic problem whose loss is known: each must rank held-out runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from metamix.mixtures.mix.surrogates import (
    SURROGATES,
    LightGBMSurrogate,
    LinearSurrogate,
    MultiTargetSurrogate,
    kfold_evaluate,
    make_surrogate,
    spearman,
)

torch.set_num_threads(1)
TARGET = np.array([0.4, 0.3, 0.2, 0.1])


def synthetic_loss(w: np.ndarray) -> np.ndarray:
    """Cross-entropy-like: smallest at w = TARGET, steep near w_d = 0."""
    return -(TARGET * np.log(w + 0.01)).sum(axis=1)


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    w = np.random.default_rng(seed).dirichlet(np.ones(4), size=n)
    return w, synthetic_loss(w)


@pytest.mark.parametrize("name", ["linear", "loglinear", "gp", "ensemble"])
def test_each_surrogate_ranks_held_out_runs(name: str) -> None:
    X, y = _data(40, 0)
    Xt, yt = _data(200, 1)
    rho = spearman(make_surrogate(name).fit(X, y).predict(Xt), yt)
    floor = 0.6 if name == "linear" else 0.9  # raw weights cannot express log curvature
    assert rho > floor, (name, rho)


def test_loglinear_recovers_exact_log_model() -> None:
    X, _ = _data(60, 2)
    y = -(TARGET * np.log(X + 1e-3)).sum(axis=1)  # inside the model's feature space
    pred = LinearSurrogate(log_features=True).fit(X, y).predict(X)
    assert np.abs(pred - y).max() < 0.05 * np.ptp(y)


def test_lightgbm_regmix_settings_cannot_split_tiny_data() -> None:
    X, y = _data(32, 3)  # min_child_samples=20: no split possible with 32 runs
    pred = LightGBMSurrogate().fit(X, y).predict(X)
    assert np.ptp(pred) == 0 and np.isnan(spearman(pred, y))
    big_X, big_y = _data(400, 4)
    assert spearman(LightGBMSurrogate().fit(big_X, big_y).predict(X), y) > 0.8


def test_mde_columns_are_used_as_extra_inputs() -> None:
    X, _ = _data(50, 5)
    mde = np.random.default_rng(6).normal(size=(50, 1))
    y = synthetic_loss(X) + 2.0 * mde[:, 0]  # half the signal is only in the extra column
    Xf = np.hstack([X, mde])
    with_mde = kfold_evaluate(lambda: make_surrogate("loglinear", n_weights=4), Xf, y)
    without = kfold_evaluate(lambda: make_surrogate("loglinear"), X, y)
    assert with_mde["spearman"] > 0.95 > without["spearman"]


def test_multi_target_predicts_weighted_average() -> None:
    X, y1 = _data(40, 7)
    y2 = 2.0 * y1 + 1.0
    model = MultiTargetSurrogate(lambda: LinearSurrogate(log_features=True), np.array([1, 3]))
    model.fit(X, np.column_stack([y1, y2]))
    each = model.predict_each(X)
    np.testing.assert_allclose(model.predict(X), 0.25 * each[:, 0] + 0.75 * each[:, 1])


def test_kfold_reports_both_metrics_and_rejects_tiny_tables() -> None:
    X, y = _data(30, 8)
    out = kfold_evaluate(lambda: make_surrogate("loglinear"), X, y, k=5)
    assert set(out) == {"spearman", "mse"} and out["spearman"] > 0.9 and out["mse"] >= 0
    with pytest.raises(ValueError, match="at least 5 runs"):
        kfold_evaluate(lambda: make_surrogate("linear"), X[:4], y[:4], k=5)
    with pytest.raises(ValueError, match="unknown surrogate"):
        make_surrogate("nope")
    assert set(SURROGATES) == {"linear", "loglinear", "lightgbm", "gp", "ensemble"}


def test_mix_run_comparison_derives_the_ensemble_from_its_members(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`mix run` compared the ensemble by fitting its GP again (issue 29); with loglinear
    and gp also compared, its K-fold predictions are their mean and its fit theirs: the
    same scores as fitting it alone, with one GP fit per input set instead of two."""
    import botorch.fit

    from metamix.mixtures.mix.fitting import compare_surrogates, kfold_objective

    w, loss = _data(24, 5)
    Y = np.column_stack([loss, 2 * loss])
    tw = np.array([1.0, 1.0])
    mde = lambda x: np.hstack([x, x[:, :1] ** 2])  # noqa: E731  (a stand-in MDE feature)
    fits = {"n": 0}
    real = botorch.fit.fit_gpytorch_mll

    def counted(*a, **k):
        fits["n"] += 1
        return real(*a, **k)

    monkeypatch.setattr(botorch.fit, "fit_gpytorch_mll", counted)
    table, _, _ = compare_surrogates(["loglinear", "gp", "ensemble"], w, Y, tw, mde, 4, 0)
    assert fits["n"] == 2 * 2  # gp and gp+mde, one GP per target column; none for ensemble
    assert list(table) == ["loglinear", "loglinear+mde", "gp", "gp+mde", "ensemble",
                           "ensemble+mde"]
    torch.manual_seed(0)
    alone, _ = kfold_objective(lambda: make_surrogate("ensemble", n_weights=4), w, Y, tw, 4, 0)
    assert table["ensemble"]["spearman"] == pytest.approx(alone["spearman"], abs=1e-9)
    assert table["ensemble"]["mse"] == pytest.approx(alone["mse"], rel=1e-6)
