"""RegMix-style mixture sampling: Dirichlet around the token-count prior.

Why this shape: proxy runs are spent best on mixtures that are plausible for the final job
(near the natural token distribution) yet diverse enough for a regression to see every
domain's effect. RegMix (Liu et al. 2024) draws Dirichlet(prior * c) with concentrations c
log-spaced in [0.1, 5] (small c = spiky mixtures, large c = near the prior), zeroes weights
below a floor (a domain with a handful of examples is noise), rejects mixtures that use a
domain beyond what the final job may repeat, and removes near-duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def availability_caps(available_tokens: np.ndarray, total_budget: float,
                      max_epochs: float = 4.0) -> np.ndarray:
    """Per-domain upper bound on the weight: weight * budget <= max_epochs * available.

    RegMix's bound ``min(prior * 15, 1)`` is the special case available/budget = prior
    (token shares) and max_epochs = 15.
    """
    available = np.asarray(available_tokens, dtype=np.float64)
    if total_budget <= 0 or (available < 0).any():
        raise ValueError("total_budget must be > 0 and available tokens >= 0")
    return np.minimum(max_epochs * available / total_budget, 1.0)


@dataclass(frozen=True)
class SamplerConfig:
    """Knobs of ``sample_mixtures``; defaults are RegMix's (synthesize_mixture.py)."""

    min_concentration: float = 0.1
    max_concentration: float = 5.0
    n_concentrations: int = 15
    temperature: float = 0.5  # prior ** temperature flattens a skewed prior
    floor: float = 2e-4  # weights below this are set to 0 (then renormalized)
    min_l1: float = 1e-3  # reject a sample this close (L1) to one already kept
    min_linf: float = 0.0  # ... or this close in L-infinity
    oversample: int = 20  # candidate draws per wanted sample before giving up


def sample_mixtures(prior: np.ndarray, n: int, seed: int = 0,
                    caps: np.ndarray | None = None,
                    config: SamplerConfig | None = None) -> np.ndarray:
    """``n`` distinct mixtures (rows sum to 1, each weight <= its cap); seeded.

    Raises ``ValueError`` when the caps are infeasible (sum < 1) or too few distinct samples
    pass the filters, rather than returning fewer rows than asked.
    """
    cfg = config or SamplerConfig()
    prior = np.asarray(prior, dtype=np.float64)
    if prior.ndim != 1 or (prior < 0).any() or prior.sum() <= 0:
        raise ValueError("prior must be a non-negative vector with a positive sum")
    caps = np.ones_like(prior) if caps is None else np.asarray(caps, dtype=np.float64)
    if caps.shape != prior.shape or caps.sum() < 1.0 - 1e-9:
        raise ValueError("caps must have one entry per domain and sum to >= 1 "
                         f"(sum {caps.sum():.4g})")
    rng = np.random.default_rng(seed)
    alpha = prior / prior.sum()
    if cfg.temperature != 1.0:
        alpha = alpha**cfg.temperature
        alpha = alpha / alpha.sum()
    alpha = np.maximum(alpha, 1e-6)
    strengths = np.logspace(np.log10(cfg.min_concentration), np.log10(cfg.max_concentration),
                            cfg.n_concentrations)
    kept: list[np.ndarray] = []
    batch = max(256, 4 * n)
    for _ in range(max(1, cfg.oversample * n // batch + 1) * 4):
        if len(kept) >= n:
            break
        conc = rng.choice(strengths, size=batch)[:, None]
        draws = rng.gamma(alpha[None, :] * conc)  # Dirichlet via normalized gammas
        sums = draws.sum(axis=1, keepdims=True)
        draws = draws[sums[:, 0] > 0] / sums[sums[:, 0] > 0]
        draws = np.where(draws < cfg.floor, 0.0, draws)
        draws = draws / draws.sum(axis=1, keepdims=True)
        draws = draws[(draws <= caps[None, :] + 1e-12).all(axis=1)]
        for row in draws:
            if len(kept) >= n:
                break
            if kept and _too_close(row, np.asarray(kept), cfg):
                continue
            kept.append(row)
    if len(kept) < n:
        raise ValueError(f"only {len(kept)} of {n} mixtures passed the caps and distance filters; "
                         "loosen caps, floor or min distance")
    return np.asarray(kept)


def _too_close(row: np.ndarray, kept: np.ndarray, cfg: SamplerConfig) -> bool:
    diff = np.abs(kept - row[None, :])
    if (diff.sum(axis=1) < cfg.min_l1).any():
        return True
    return bool(cfg.min_linf > 0 and (diff.max(axis=1) < cfg.min_linf).any())


def dirichlet_candidates(prior: np.ndarray, n: int, seed: int = 0,
                         caps: np.ndarray | None = None,
                         concentrations: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0, 10.0),
                         ) -> np.ndarray:
    """Many cheap candidates for surrogate search (no dedup): cap-respecting Dirichlet draws.

    Draws that break a cap are projected back by clipping and redistributing the excess
    over uncapped domains, so every returned row is feasible without rejection loops.
    """
    prior = np.asarray(prior, dtype=np.float64)
    rng = np.random.default_rng(seed)
    alpha = np.maximum(prior / prior.sum(), 1e-6)
    conc = rng.choice(np.asarray(concentrations), size=n)[:, None]
    draws = rng.gamma(alpha[None, :] * conc) + 1e-12
    draws /= draws.sum(axis=1, keepdims=True)
    return project_to_caps(draws, caps) if caps is not None else draws


def project_to_caps(weights: np.ndarray, caps: np.ndarray, iters: int = 50) -> np.ndarray:
    """Clip rows at ``caps`` and spread the excess proportionally over domains with room."""
    w = np.array(weights, dtype=np.float64, copy=True)
    caps = np.asarray(caps, dtype=np.float64)
    if caps.sum() < 1.0 - 1e-9:
        raise ValueError(f"caps sum to {caps.sum():.4g} < 1: no mixture can satisfy them")
    for _ in range(iters):
        over = np.maximum(w - caps, 0.0)
        excess = over.sum(axis=1, keepdims=True)
        if excess.max() <= 1e-12:
            break
        w = np.minimum(w, caps)
        room = np.maximum(caps - w, 0.0)
        share = np.where(room.sum(axis=1, keepdims=True) > 0,
                         room / np.maximum(room.sum(axis=1, keepdims=True), 1e-300), 0.0)
        w = w + excess * share
    return w / w.sum(axis=1, keepdims=True)
