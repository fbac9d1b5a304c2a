"""Emitters: hand a chosen mixture to the pretraining job / selection stage.

``write_mixture_file`` writes the nested mixture-file form that
``metamix.pipeline.selection.files.load_mixture_file`` reads (``selection.mixture_file``), so a
``mix optimize --out`` result feeds ``metamix select`` (mode ``token_budget``) directly:
``{"weights": {domain: w}, "total_tokens": N, "predicted_loss": x, ...}``.
``write_suggestions`` writes proposed runs as a pool-format table for the proxy trainers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from metamix.base.atomic import write_json_atomic
from metamix.mixtures.mix.runs_table import write_runs_table
from metamix.pipeline.selection.shares import SHARE_DECIMALS, rounded_shares

#: Decimals kept in emitted weights; the largest absorbs rounding so the sum is exact.
WEIGHT_DECIMALS = SHARE_DECIMALS


def rounded_weights(domains: list[str], weights: np.ndarray) -> dict[str, float]:
    """Round to ``WEIGHT_DECIMALS`` keeping the sum at 1 (largest weight absorbs the rest):
    the rounding of every share select and export write, too."""
    return rounded_shares({d: float(x) for d, x in
                           zip(domains, np.asarray(weights, dtype=np.float64), strict=True)})


def write_mixture_file(path: str | Path, domains: list[str], weights: np.ndarray,
                       total_tokens: int | None = None, predicted_loss: float | None = None,
                       **extra: Any) -> Path:
    """Atomic JSON mixture file for the selection stage / pretraining job."""
    payload: dict[str, Any] = {"weights": rounded_weights(domains, weights)}
    if total_tokens is not None:
        payload["total_tokens"] = int(total_tokens)
    if predicted_loss is not None:
        payload["predicted_loss"] = float(predicted_loss)
    payload.update(extra)
    write_json_atomic(Path(path), payload)
    return Path(path)


def write_suggestions(path: str | Path, domains: list[str], weights: np.ndarray,
                      fidelity: np.ndarray | None = None,
                      extra: dict[str, np.ndarray] | None = None) -> Path:
    """Proposed runs as a runs-table (pool) file: w_<domain> (+ fidelity, cost, id)."""
    columns = {"fidelity": np.asarray(fidelity)} if fidelity is not None else {}
    columns.update(extra or {})
    return write_runs_table(path, domains, weights, extra=columns)
