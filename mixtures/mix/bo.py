"""Single-fidelity BO as ``mix suggest`` runs it: surrogate chosen by K-fold, then qLogEI.

Shared by the CLI, by multi-fidelity search (which falls back to exactly this while no
cheap level is trusted) and by the benchmarks, so what is measured is what users run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from metamix.mixtures.mix.bo_models import fit_gp, hyperparameters
from metamix.mixtures.mix.choice import SurrogateChoice, choose_surrogate, constant_warning
from metamix.mixtures.mix.names import SUGGEST_SURROGATES
from metamix.mixtures.mix.search import bo_suggest, bo_suggest_pool
from metamix.mixtures.mix.surrogates import (
    EnsembleSurrogate,
    GPSurrogate,
    Surrogate,
    make_surrogate,
)

#: Fewest runs BO can start from.
MIN_RUNS = 3


@dataclass
class Suggestion:
    """``weights``: proposed mixtures; ``index``: their rows in the candidate pool."""

    weights: np.ndarray
    index: np.ndarray | None
    choice: SurrogateChoice
    warnings: list[str] = field(default_factory=list)
    warm: dict | None = None   # the GP's hyper-parameters, for the next step's ``warm``


def _choice(weights: np.ndarray, losses: np.ndarray, surrogate: str, seed: int,
            folds: int, warm: dict | None, maxiter: int | None) -> SurrogateChoice:
    if surrogate != "auto":
        return SurrogateChoice(surrogate, "chosen with --surrogate")
    torch.manual_seed(seed)  # a GP fit that fails retries from sampled priors
    return choose_surrogate(weights, losses, SUGGEST_SURROGATES, "gp", weights.shape[1],
                            folds, seed, gp_init=warm, gp_maxiter=maxiter)


def suggest(weights: np.ndarray, losses: np.ndarray, n: int = 1,
            pool: np.ndarray | None = None, caps: np.ndarray | None = None, seed: int = 0,
            surrogate: str = "auto", folds: int = 5, warm: dict | None = None,
            maxiter: int | None = None, choice: SurrogateChoice | None = None) -> Suggestion:
    """``n`` mixtures to run next from the pool (rows) or the capped simplex.

    ``warm``/``maxiter``: start the GP fits from a previous step's hyper-parameters
    (``Suggestion.warm``) with capped L-BFGS iterations: a BO loop's shortcut.
    ``choice``: a surrogate choice made before (``mix suggest``'s fit cache): no K-fold.
    """
    if len(losses) < MIN_RUNS:
        raise ValueError(f"BO needs at least {MIN_RUNS} runs, got {len(losses)}")
    if np.ptp(losses) == 0:
        raise ValueError(f"all {len(losses)} runs have the same loss ({losses[0]:.6g}): "
                         "they say nothing about which mixture is better")
    if choice is None:
        choice = _choice(weights, losses, surrogate, seed, folds, warm, maxiter)
    fitted_gp = choice.fitted.get("gp")
    gp = fitted_gp.model_ if fitted_gp is not None else None
    if gp is None:
        torch.manual_seed(seed)
        gp = fit_gp(weights, losses, init=warm, maxiter=maxiter)
    model = lead_model(choice, weights, losses, gp)
    warnings = list(choice.warnings)
    if pool is not None:
        index = bo_suggest_pool(weights, losses, pool, n=min(n, len(pool)), seed=seed,
                                surrogate=model, gp=gp)
        chosen = pool[index]
        if model is not None:
            warn = constant_warning(choice.name, model.predict(pool))
            warnings += [warn] if warn else []
        return Suggestion(chosen, index, choice, warnings, hyperparameters(gp))
    chosen = bo_suggest(weights, losses, n=n, caps=caps, seed=seed, surrogate=model, gp=gp)
    return Suggestion(chosen, None, choice, warnings, hyperparameters(gp))


def lead_model(choice: SurrogateChoice, weights: np.ndarray, losses: np.ndarray,
               gp: Any) -> Surrogate | None:
    """The non-GP surrogate whose predictions lead the acquisition (None for ``gp``).

    Fits K-fold already made are reused, and an ensemble takes the acquisition's ``gp``
    (the same fit on the same runs) as its GP member instead of fitting it again."""
    if choice.name == "gp":
        return None
    if choice.name in choice.fitted:
        return choice.fitted[choice.name]
    d = weights.shape[1]
    if choice.name not in ("loglinear", "ensemble"):
        return make_surrogate(choice.name, d).fit(weights, losses)
    loglinear = choice.fitted.get("loglinear") or \
        make_surrogate("loglinear", d).fit(weights, losses)
    if choice.name == "loglinear":
        return loglinear
    return EnsembleSurrogate([loglinear, GPSurrogate.from_model(gp, d)])
