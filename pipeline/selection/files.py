"""Weights and mixture files read by selection (see ``metamix.pipeline.selection`` for the formats).

Both files are produced by other stages (learned Meta-rater weights, mixture search), so
every problem is reported as a one-line ``SelectionError`` naming the file and the key at
fault: the CLI shows it as-is instead of a traceback.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from metamix.base.atomic import write_json_atomic

Normalization = Literal["minmax", "percentile"]
NORMALIZATIONS: tuple[str, ...] = ("minmax", "percentile")

#: How far mixture weights may sum from 1 (rounding in whoever wrote the file).
MIXTURE_SUM_TOLERANCE = 1e-3


class SelectionError(ValueError):
    """A user-fixable problem with the selection inputs; the message is one line."""


@dataclass(frozen=True)
class WeightsFile:
    """Score weights plus the normalization they were fitted under."""

    weights: dict[str, float]
    normalization: Normalization | None = None
    #: Keys other writers add (``predicted_loss``, ``importance`` ...), kept for round-trips.
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Mixture:
    """Domain weights (summing to 1) and, optionally, the total token count they split."""

    weights: dict[str, float]
    total_tokens: int | None = None
    #: the mixture chosen before the shortfall rule (``chosen_weights``, written by
    #: ``metamix mix``); None when the file has no such key
    chosen: dict[str, float] | None = None


def _read_json_object(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SelectionError(f"{what} {path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SelectionError(f"{what} {path}: cannot read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise SelectionError(f"{what} {path}: invalid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise SelectionError(f"{what} {path}: expected a JSON object, got {type(data).__name__}")
    return data


def _finite_number(value: Any) -> bool:
    # bool is an int subclass, but `true` as a weight is almost surely a mistake.
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _weight_map(raw: Any, path: Path, what: str, key: str) -> dict[str, float]:
    if not isinstance(raw, dict) or not raw:
        raise SelectionError(f"{what} {path}: '{key}' must be a non-empty object of name: number")
    out: dict[str, float] = {}
    for name, value in raw.items():
        if not _finite_number(value):
            raise SelectionError(
                f"{what} {path}: {key}.{name} must be a finite number, got {value!r}"
            )
        out[str(name)] = float(value)
    return out


def load_weights_file(path: Path) -> WeightsFile:
    """Read a weights file, validating only what selection needs and keeping the rest."""
    path = Path(path)
    what = "weights file"
    data = _read_json_object(path, what)
    if "weights" not in data:
        raise SelectionError(f"{what} {path}: missing key 'weights'")
    weights = _weight_map(data["weights"], path, what, "weights")
    normalization = data.get("normalization")
    if normalization is not None and normalization not in NORMALIZATIONS:
        raise SelectionError(
            f"{what} {path}: normalization must be one of {list(NORMALIZATIONS)}, "
            f"got {normalization!r}"
        )
    extra = {k: v for k, v in data.items() if k not in ("weights", "normalization")}
    return WeightsFile(weights=weights, normalization=normalization, extra=extra)


def save_weights_file(
    path: Path,
    weights: Mapping[str, float],
    *,
    normalization: Normalization = "minmax",
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Write weights in the format ``load_weights_file`` reads (atomically, stable bytes)."""
    extra = dict(extra or {})
    clash = {"weights", "normalization"} & extra.keys()
    if clash:
        raise SelectionError(f"weights file {path}: extra keys {sorted(clash)} are reserved")
    bad = [k for k, v in weights.items() if not _finite_number(v)]
    if not weights or bad:
        raise SelectionError(f"weights file {path}: weights must be non-empty and finite: {bad}")
    if normalization not in NORMALIZATIONS:
        raise SelectionError(f"weights file {path}: unknown normalization {normalization!r}")
    payload = {**extra, "weights": {k: float(v) for k, v in weights.items()},
               "normalization": normalization}
    write_json_atomic(path, payload)


def load_mixture_file(path: Path) -> Mixture:
    """Accept the flat ``{domain: w}`` and nested ``{"weights": {...}, "total_tokens": N}`` forms.

    Weights must be non-negative and sum to 1 (within ``MIXTURE_SUM_TOLERANCE``): a file in
    percentages or with a domain missing would otherwise silently rescale every budget.
    """
    path = Path(path)
    what = "mixture file"
    data = _read_json_object(path, what)
    total_tokens: int | None = None
    chosen: dict[str, float] | None = None
    if isinstance(data.get("weights"), dict):
        weights = _weight_map(data["weights"], path, what, "weights")
        if data.get("chosen_weights") is not None:
            chosen = _weight_map(data["chosen_weights"], path, what, "chosen_weights")
        raw_total = data.get("total_tokens")
        if raw_total is not None:
            if not _finite_number(raw_total) or raw_total <= 0 or raw_total != int(raw_total):
                raise SelectionError(
                    f"{what} {path}: total_tokens must be a positive integer, got {raw_total!r}"
                )
            total_tokens = int(raw_total)
        key_prefix = "weights."
    else:
        weights = _weight_map(data, path, what, "<top level>")
        key_prefix = ""
    negative = [d for d, w in weights.items() if w < 0]
    if negative:
        raise SelectionError(f"{what} {path}: {key_prefix}{negative[0]} has a negative weight")
    total_weight = math.fsum(weights.values())
    if abs(total_weight - 1.0) > MIXTURE_SUM_TOLERANCE:
        raise SelectionError(
            f"{what} {path}: domain weights sum to {total_weight:.6g}, expected 1"
        )
    return Mixture(weights=weights, total_tokens=total_tokens, chosen=chosen)
