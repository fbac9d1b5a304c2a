"""RegMix-style sampling: simplex, floor, caps, distinctness, seeds."""

from __future__ import annotations

import numpy as np
import pytest

from metamix.mixtures.mix.sampling import (
    SamplerConfig,
    availability_caps,
    dirichlet_candidates,
    project_to_caps,
    sample_mixtures,
)

PRIOR = np.array([0.5, 0.3, 0.1, 0.05, 0.05])


def test_availability_caps_by_hand() -> None:
    # 4 epochs of 10 tokens over a budget of 100 -> 0.4; of 50 -> 2.0 capped at 1
    np.testing.assert_allclose(availability_caps(np.array([10, 50]), 100, 4.0), [0.4, 1.0])
    with pytest.raises(ValueError):
        availability_caps(np.array([1.0]), 0)


def test_samples_are_feasible_distinct_and_seeded() -> None:
    caps = np.array([0.6, 0.6, 0.4, 0.3, 0.3])
    cfg = SamplerConfig(floor=0.02, min_l1=0.05)
    a = sample_mixtures(PRIOR, 200, seed=3, caps=caps, config=cfg)
    assert a.shape == (200, 5)
    np.testing.assert_allclose(a.sum(axis=1), 1.0)
    assert (a <= caps + 1e-9).all()
    assert ((a == 0) | (a >= 0.02 * 0.9)).all()  # below-floor weights were zeroed
    dist = np.abs(a[:, None, :] - a[None, :, :]).sum(-1) + np.eye(200) * 9
    assert dist.min() >= 0.05
    np.testing.assert_array_equal(a, sample_mixtures(PRIOR, 200, seed=3, caps=caps, config=cfg))
    assert not np.array_equal(a, sample_mixtures(PRIOR, 200, seed=4, caps=caps, config=cfg))


def test_concentration_range_spans_spiky_and_smooth() -> None:
    a = sample_mixtures(PRIOR, 300, seed=0)
    top = a.max(axis=1)
    assert top.max() > 0.9 and top.min() < 0.6  # both regimes are present


def test_infeasible_caps_raise() -> None:
    with pytest.raises(ValueError, match="sum to >= 1"):
        sample_mixtures(PRIOR, 5, caps=np.full(5, 0.1))
    with pytest.raises(ValueError, match="passed the caps"):
        sample_mixtures(PRIOR, 50, config=SamplerConfig(min_l1=1.9, oversample=2))


def test_candidates_and_projection_respect_caps() -> None:
    caps = np.array([0.3, 0.3, 0.3, 0.3, 0.3])
    c = dirichlet_candidates(PRIOR, 5000, seed=1, caps=caps)
    np.testing.assert_allclose(c.sum(axis=1), 1.0)
    assert (c <= caps + 1e-9).all()
    # hand-checked: [0.8, 0.2, 0, 0, 0] with caps .3 -> excess .5 spread over room
    # (0.1, .3, .3, .3) proportionally then clipped again until feasible
    p = project_to_caps(np.array([[0.8, 0.2, 0, 0, 0]]), caps)
    assert (p <= caps + 1e-9).all() and abs(p.sum() - 1) < 1e-12
    assert p[0, 0] == pytest.approx(0.3)
