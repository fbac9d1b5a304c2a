"""MDE features: vectorized result equals a brute-force loop; subsampling error is small."""

from __future__ import annotations

import math
import time

import numpy as np

from metamix.mixtures.mix.mde import mde_features, mde_features_subsampled, subsample_tokens


def _problem(seed: int, n_experts: int, n_tokens: int, n_val: int):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(50), size=(n_experts, n_tokens))[..., 0] + 1e-4
    labels = rng.integers(0, n_val, size=n_tokens)
    return probs, labels


def test_matches_brute_force_loop() -> None:
    probs, labels = _problem(0, 3, 40, 2)
    mixtures = np.array([[1.0, 0.0, 0.0], [0.2, 0.3, 0.5], [0.0, 0.5, 0.5]])
    got = mde_features(probs, labels, mixtures, chunk=2)  # chunking across mixtures
    for i, lam in enumerate(mixtures):
        for v in range(2):
            toks = [t for t in range(40) if labels[t] == v]
            want = sum(-math.log(sum(lam[d] * probs[d, t] for d in range(3))) for t in toks)
            assert abs(got[i, v] - want / len(toks)) < 1e-4


def test_pure_expert_mixture_is_that_experts_loss_and_empty_domain_nan() -> None:
    probs = np.array([[0.5, 0.25], [0.1, 0.1]])
    labels = np.array([0, 0])
    got = mde_features(probs, labels, np.array([[1.0, 0.0]]), n_domains=2)
    assert got[0, 0] == np.float32((math.log(2) + math.log(4)) / 2)
    assert np.isnan(got[0, 1])


def test_subsample_is_fixed_and_capped_per_domain() -> None:
    labels = np.array([0] * 100 + [1] * 5)
    idx = subsample_tokens(labels, per_domain=10, seed=1)
    assert (labels[idx] == 0).sum() == 10 and (labels[idx] == 1).sum() == 5
    np.testing.assert_array_equal(idx, subsample_tokens(labels, per_domain=10, seed=1))


def test_subsample_error_is_small_and_many_mixtures_are_fast() -> None:
    probs, labels = _problem(1, 8, 60_000, 3)
    mixtures = np.random.default_rng(2).dirichlet(np.ones(8), size=20_000)
    full = mde_features(probs, labels, mixtures[:200])
    approx = mde_features_subsampled(probs, labels, mixtures[:200], per_domain=4096)
    assert np.abs(full - approx).max() < 0.05  # about 3 standard errors of a 4k-token mean
    started = time.perf_counter()
    out = mde_features_subsampled(probs, labels, mixtures, per_domain=1024)
    assert out.shape == (20_000, 3) and time.perf_counter() - started < 20
