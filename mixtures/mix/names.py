"""Surrogate names and the ``mix`` command's argument types, with no heavy imports.

The ``mix`` parser needs these to build ``--help`` and ``choices``; importing them from
``surrogates`` or ``bo`` pulled in torch, BoTorch and SciPy (4-6 s) before argparse could
print a line (issue 29). ``surrogates`` and ``bo`` re-export them.
"""

from __future__ import annotations

import argparse
import math

SURROGATES: dict[str, str] = {
    "linear": "RegMix linear regression on weights",
    "loglinear": "ridge on [w, log(w+1e-3)]",
    "lightgbm": "LightGBM, RegMix settings",
    "gp": "BoTorch GP (Matern-5/2 ARD) on sqrt(w)",
    "ensemble": "mean of loglinear and gp",
}

#: Surrogates ``suggest`` chooses from (a GP supplies the uncertainty for the others).
SUGGEST_SURROGATES = ("gp", "loglinear", "ensemble")


def token_count(text: str) -> int:
    """``--total-tokens``: 1000000, 1e9 or 2.5e9 (a whole positive number of tokens)."""
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value <= 0 or value != int(value):
        raise argparse.ArgumentTypeError(f"must be a whole number > 0, got {text!r}")
    return int(value)
