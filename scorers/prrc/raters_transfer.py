"""Transfer evaluation: how a rater does on kinds of text it was not trained on.

A random test split shares its kinds with the training rows, so it measures how well a
rater knows *those* kinds. Grouped cross-validation holds out whole kinds instead (leave-one-
kind-out, or kind-grouped K-fold when there are many kinds) and pools the out-of-fold
predictions. Besides Spearman over all held-out documents, it checks what a mixture built on
the scores would feel first: the mean score of each kind. A kind whose mean prediction sits
below another kind's while its labels sit clearly above (by more than ``margin``) is an
*inversion*: selection would prefer the wrong kind of text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from metamix.scorers.prrc.raters_metrics import evaluate, spearman

Scheme = Literal["leave_one_kind_out", "group_k_fold"]


class TransferCV(BaseModel):
    """The ``train_rater.cv`` section."""

    model_config = ConfigDict(extra="forbid")

    group_by: Literal["kind", "source"] = Field(
        default="kind", description="the unit held out together: a kind of text or a source")
    scheme: Scheme = Field(
        default="leave_one_kind_out", description="hold out each group in turn, or K group folds")
    folds: int = Field(default=5, ge=2, description="for group_k_fold")
    source_folds: int = Field(
        default=5, ge=0, description="also hold out whole sources (K source-grouped folds: "
        "a kind's other sources stay in training); 0 = off. The default rater per dimension "
        "is chosen on the mean Spearman of both evaluations")
    inversion_margin: float = Field(
        default=0.25, ge=0,
        description="labelled kind means closer than this are ties, never inversions")


def kind_folds(groups: Sequence[str], scheme: Scheme = "leave_one_kind_out", folds: int = 5
               ) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train rows, held-out rows) per fold; every group is held out exactly once.

    Leave-one-kind-out gives one fold per kind in sorted kind order; ``group_k_fold`` uses
    scikit-learn's GroupKFold (deterministic, balances fold sizes)."""
    from sklearn.model_selection import GroupKFold, LeaveOneGroupOut

    groups = np.asarray(groups)
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise ValueError(f"grouped cross-validation needs ≥ 2 kinds, got {n_groups}")
    if scheme == "leave_one_kind_out":
        splitter: Any = LeaveOneGroupOut()
    else:
        splitter = GroupKFold(n_splits=min(folds, n_groups))
    return [(np.asarray(a), np.asarray(b)) for a, b in splitter.split(groups, groups, groups)]


def kind_inversions(label_means: dict[str, float], predicted_means: dict[str, float],
                    margin: float) -> list[dict[str, Any]]:
    """Pairs (higher, lower) whose labelled means differ by more than ``margin`` but whose
    predicted means are in the opposite order, largest labelled gap first."""
    found = []
    for higher, label_high in label_means.items():
        for lower, label_low in label_means.items():
            gap = label_high - label_low
            if gap > margin and predicted_means[higher] < predicted_means[lower]:
                found.append({"higher": higher, "lower": lower, "label_gap": gap,
                              "predicted_gap": predicted_means[higher] - predicted_means[lower]})
    return sorted(found, key=lambda d: (-d["label_gap"], d["higher"], d["lower"]))


def transfer_metrics(predicted: Sequence[float], labels: Sequence[int], groups: Sequence[str],
                     margin: float) -> dict[str, Any]:
    """Metrics of out-of-fold predictions where each row's fold held out its whole kind.

    ``spearman`` pools every held-out row (the headline number: it rewards ranking both
    within and across kinds); ``within_kind_spearman_*`` summarize each kind alone (NaN
    for a kind whose labels are all equal); ``kind_order_spearman`` compares the kind means.
    """
    p = np.asarray(predicted, np.float64)
    y = np.asarray(labels, np.float64)
    g = np.asarray(groups)
    kinds: dict[str, dict[str, float]] = {}
    for kind in sorted(np.unique(g).tolist()):
        rows = g == kind
        kinds[kind] = {"n": int(rows.sum()), "label_mean": float(y[rows].mean()),
                       "predicted_mean": float(p[rows].mean()),
                       "spearman": spearman(p[rows], y[rows])}
    within = np.array([k["spearman"] for k in kinds.values()])
    finite = within[np.isfinite(within)]
    label_means = {k: v["label_mean"] for k, v in kinds.items()}
    predicted_means = {k: v["predicted_mean"] for k, v in kinds.items()}
    inversions = kind_inversions(label_means, predicted_means, margin)
    return {
        **evaluate(p, y.astype(np.int64)),
        "within_kind_spearman_mean": float(finite.mean()) if len(finite) else float("nan"),
        "within_kind_spearman_min": float(finite.min()) if len(finite) else float("nan"),
        "kind_order_spearman": spearman(list(predicted_means.values()),
                                        list(label_means.values())),
        "n_inversions": len(inversions),
        "inversions": inversions,
        "kinds": kinds,
    }
