"""Rater evaluation metrics against integer 0–5 labels.

A rater's output is a continuous expected value, so ranking quality (Spearman) is the
headline number — selection thresholds on a percentile only need the order right. The two
classification views round the expected value to the nearest score (that is the number a
user of the scorer sees), not the argmax class.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def spearman(predicted: Sequence[float], labels: Sequence[float]) -> float:
    """Pearson correlation of average ranks; NaN when either side is constant."""
    from scipy.stats import rankdata  # SciPy loads only when raters are evaluated

    x = rankdata(np.asarray(predicted, np.float64))  # average ranks for ties
    y = rankdata(np.asarray(labels, np.float64))
    if len(x) < 2 or x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def rounded(predicted: Sequence[float]) -> np.ndarray:
    """Nearest integer score in 0..5 (halves round up, unlike numpy's banker's rounding)."""
    return np.clip(np.floor(np.asarray(predicted, np.float64) + 0.5), 0, 5).astype(np.int64)


def within_one_accuracy(predicted: Sequence[float], labels: Sequence[int]) -> float:
    """Share of documents whose rounded score is at most 1 away from the label."""
    y = np.asarray(labels, np.int64)
    return float(np.mean(np.abs(rounded(predicted) - y) <= 1)) if len(y) else float("nan")


def macro_f1(predicted: Sequence[float], labels: Sequence[int]) -> float:
    """Unweighted mean F1 over the classes present in labels or rounded predictions
    (sklearn's ``average="macro"``); a class with no true or predicted hits has F1 0."""
    y = np.asarray(labels, np.int64)
    p = rounded(predicted)
    classes = np.union1d(y, p)
    if not len(classes):
        return float("nan")
    scores = []
    for c in classes:
        tp = np.sum((p == c) & (y == c))
        denom = np.sum(p == c) + np.sum(y == c)
        scores.append(2.0 * tp / denom if denom else 0.0)
    return float(np.mean(scores))


def evaluate(predicted: Sequence[float], labels: Sequence[int]) -> dict[str, float]:
    return {"spearman": spearman(predicted, labels),
            "within1_acc": within_one_accuracy(predicted, labels),
            "macro_f1": macro_f1(predicted, labels),
            "n": len(labels)}
