"""Calibrated PRRC outputs: predictions squeezed into 2-4 are spread over the labels' scale,
in the same order."""

from __future__ import annotations

import numpy as np
import pytest

from metamix.scorers.prrc.raters_calibration import QuantileMap, spread_labels, spread_report
from metamix.scorers.prrc.raters_metrics import spearman


def test_labels_are_spread_over_their_unit_interval() -> None:
    # two 1s share (0.5, 1.5): 0.75 and 1.25; one 4 sits at its interval's middle
    assert spread_labels(np.array([4, 1, 1])).tolist() == [0.75, 1.25, 4.0]
    # the scale's ends stay inside 0-5
    assert spread_labels(np.array([0, 5])).tolist() == [0.0, 5.0]


def test_a_squeezed_rater_is_spread_like_the_labels_and_keeps_its_order() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 6, size=2000)
    squeezed = 2.5 + 0.2 * (labels - 2.5) + rng.normal(0, 0.1, size=2000)   # 2-3, noisy
    cal = QuantileMap.fit(squeezed, labels)
    out = cal(squeezed)
    assert squeezed.std() < 0.4 and out.std() == pytest.approx(labels.std(), rel=0.05)
    assert spearman(out, labels) == pytest.approx(spearman(squeezed, labels), abs=1e-3)
    assert np.all(np.diff(cal(np.sort(squeezed))) >= 0)           # monotone
    assert out.min() >= 0 and out.max() <= 5
    # values beyond the fitted range map to the ends, never outside 0-5
    assert cal(np.array([-10.0, 10.0])).tolist() == [cal.y[0], cal.y[-1]]
    again = QuantileMap.from_json(cal.to_json())
    np.testing.assert_array_equal(again(squeezed), out)


def test_spread_report_compares_kind_means() -> None:
    report = spread_report([2.0, 2.0, 3.0, 3.0], [0, 0, 5, 5], ["a", "a", "b", "b"])
    assert report == {"std_predicted": 0.5, "std_labels": 2.5,
                      "kind_means_std_predicted": 0.5, "kind_means_std_labels": 2.5}


def test_a_bad_calibration_is_refused() -> None:
    with pytest.raises(ValueError, match="x increasing"):
        QuantileMap.from_json({"x": [1.0, 0.0], "y": [0.0, 1.0]})
    with pytest.raises(ValueError, match="pairs"):
        QuantileMap.fit([1.0], [1])
