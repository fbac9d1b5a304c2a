"""Candidate mixtures for ``run_mix``: RegMix top-k search, BoTorch batches, final choice.

Every proposal is projected onto the capped simplex (``project_to_caps``): BO's optimizer
honours bounds and the sum only up to its tolerance, and a final mixture that asks for more
of a domain than ``max_epochs`` allows would be cut by the selection stage anyway.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from metamix.mixtures.mix.fitting import FittedSurrogate
from metamix.mixtures.mix.sampling import project_to_caps
from metamix.mixtures.mix.search import bo_suggest, regmix_search


@dataclass(frozen=True)
class Candidate:
    """A mixture that may become the final one; ``actual`` is its proxy objective if run."""

    source: str                 # "regmix", "bo-r1-2", "run:<run_id>", ...
    weights: np.ndarray
    predicted: float
    actual: float | None = None


def feasible(weights: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Rows on the capped simplex (non-negative, sum 1, each weight within its cap)."""
    return project_to_caps(np.clip(np.atleast_2d(weights), 0.0, None), caps)


def regmix_candidate(surrogate: FittedSurrogate, prior: np.ndarray, caps: np.ndarray,
                     n_candidates: int, top_k: int, seed: int) -> tuple[Candidate, float]:
    """RegMix search over seeded Dirichlet candidates; returns it and the seconds taken."""
    start = time.perf_counter()
    found = regmix_search(surrogate, prior, n_candidates=n_candidates, top_k=top_k,
                          seed=seed, caps=caps)
    weights = feasible(found.weights, caps)[0]
    predicted = float(surrogate.predict(weights)[0])
    return Candidate("regmix", weights, predicted), time.perf_counter() - start


def bo_batch(weights: np.ndarray, objective: np.ndarray, q: int, caps: np.ndarray,
             seed: int) -> np.ndarray:
    """q mixtures maximizing qLogEI of a GP on the runs so far (capped simplex)."""
    return feasible(bo_suggest(weights, objective, n=q, caps=caps, seed=seed), caps)


def choose_final(surrogate: FittedSurrogate, candidates: list[Candidate]) -> Candidate:
    """The candidate with the lowest *predicted* objective (re-predicted by ``surrogate``).

    Predictions rather than observed losses for evaluated runs too: one proxy run is a
    noisy draw, and the surrogate pools every run's evidence.
    """
    preds = surrogate.predict(np.stack([c.weights for c in candidates]))
    best = int(np.argmin(preds))
    c = candidates[best]
    return Candidate(c.source, c.weights, float(preds[best]), c.actual)
