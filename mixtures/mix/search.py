"""Search for good mixtures: RegMix top-k averaging and BoTorch Bayesian optimization.

* ``regmix_search``: score 10^5+ Dirichlet candidates with a fitted surrogate, average the
  top-k (RegMix: averaging is more robust than the single arg-min of a noisy surrogate).
* ``bo_suggest``: GP + qLogExpectedImprovement, optimized over the capped simplex
  (sum(w) = 1 via ``equality_constraints``, bounds = availability caps), q proposals.
* ``bo_suggest_pool``: the same acquisition, choosing from a finite candidate pool.
* ``mf_bo_suggest_pool``: multi-fidelity, cost-aware (ADMIRE-BayesOpt style): a
  SingleTaskMultiFidelityGP over [w, fidelity] and multi-fidelity max-value entropy with
  inverse-cost utility picks which (mixture, fidelity) pair of the pool to run next.
All losses are minimized; BoTorch maximizes, so models are fitted on -loss.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from metamix.mixtures.mix.bo_models import fit_gp, fit_multifidelity_gp
from metamix.mixtures.mix.sampling import dirichlet_candidates
from metamix.mixtures.mix.surrogates import Surrogate

Featurize = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class SearchResult:
    weights: np.ndarray  # (n_domains,)
    predicted_loss: float


def regmix_search(surrogate: Surrogate, prior: np.ndarray, n_candidates: int = 100_000,
                  top_k: int = 100, seed: int = 0, caps: np.ndarray | None = None,
                  featurize: Featurize | None = None) -> SearchResult:
    """Average of the top-k predicted mixtures among seeded Dirichlet candidates.

    ``featurize`` maps weights to the surrogate's full input (e.g. appends MDE features).
    The average of feasible mixtures is feasible (caps are upper bounds), so it is returned
    as-is; its predicted loss is re-evaluated, not averaged.
    """
    cands = dirichlet_candidates(prior, n_candidates, seed=seed, caps=caps)
    feats = featurize or (lambda w: w)
    pred = np.concatenate([surrogate.predict(feats(cands[i:i + 20_000]))
                           for i in range(0, len(cands), 20_000)])
    best = cands[np.argsort(pred)[:top_k]].mean(axis=0)
    best = best / best.sum()
    return SearchResult(best, float(surrogate.predict(feats(best[None, :]))[0]))


def _simplex_constraint(d: int) -> list[tuple[torch.Tensor, torch.Tensor, float]]:
    return [(torch.arange(d), torch.ones(d, dtype=torch.float64), 1.0)]


def _log_ei(model, best_loss: float):
    from botorch.acquisition.logei import qLogExpectedImprovement
    from botorch.sampling import SobolQMCNormalSampler

    sampler = SobolQMCNormalSampler(sample_shape=torch.Size([256]), seed=0)
    return qLogExpectedImprovement(model, best_f=-best_loss, sampler=sampler)


def bo_suggest(weights: np.ndarray, losses: np.ndarray, n: int = 1,
               caps: np.ndarray | None = None, seed: int = 0,
               num_restarts: int = 8, raw_samples: int = 256) -> np.ndarray:
    """Next ``n`` mixtures to run (continuous): argmax of qLogEI on the capped simplex."""
    from botorch.optim import optimize_acqf

    d = weights.shape[1]
    caps = np.ones(d) if caps is None else np.asarray(caps, dtype=np.float64)
    if caps.sum() < 1.0 - 1e-9:
        raise ValueError(f"caps sum to {caps.sum():.4g} < 1: no mixture can satisfy them")
    torch.manual_seed(seed)
    model = fit_gp(weights, losses)
    bounds = torch.stack([torch.zeros(d, dtype=torch.float64),
                          torch.as_tensor(caps, dtype=torch.float64)])
    cand, _ = optimize_acqf(_log_ei(model, float(np.min(losses))), bounds=bounds, q=n,
                            num_restarts=num_restarts, raw_samples=raw_samples,
                            equality_constraints=_simplex_constraint(d),
                            options={"seed": seed})
    out = cand.detach().numpy().clip(0.0, caps)
    return out / out.sum(axis=1, keepdims=True)


def bo_suggest_pool(weights: np.ndarray, losses: np.ndarray, pool: np.ndarray, n: int = 1,
                    extra: np.ndarray | None = None, pool_extra: np.ndarray | None = None,
                    seed: int = 0) -> np.ndarray:
    """Indices into ``pool`` of the next ``n`` mixtures (greedy sequential qLogEI).

    ``extra``/``pool_extra``: optional per-run features (MDE, or a cheap fidelity's
    prediction) appended to the GP inputs.
    """
    from botorch.optim import optimize_acqf_discrete

    torch.manual_seed(seed)
    model = fit_gp(weights, losses, extra)
    choices = np.hstack([pool, pool_extra]) if pool_extra is not None else pool
    choices_t = torch.as_tensor(choices, dtype=torch.float64)
    picked, _ = optimize_acqf_discrete(_log_ei(model, float(np.min(losses))),
                                       q=min(n, len(pool)), choices=choices_t)
    return np.array([_row_index(choices_t, row) for row in picked])


def _row_index(table: torch.Tensor, row: torch.Tensor) -> int:
    return int(torch.argmin((table - row).abs().sum(dim=-1)))


def mf_bo_suggest_pool(weights: np.ndarray, fidelity: np.ndarray, losses: np.ndarray,
                       pool: np.ndarray, fidelities: tuple[float, ...],
                       costs: tuple[float, ...], n: int = 1,
                       seed: int = 0) -> list[tuple[int, float]]:
    """Cost-aware multi-fidelity choice: the ``n`` best (pool index, fidelity) pairs.

    Acquisition: multi-fidelity max-value entropy (information about the best target-
    fidelity loss) divided by the run's cost, from an affine cost model fitted through
    ``(fidelities, costs)``; target fidelity is ``max(fidelities)``. Observed runs at
    every fidelity sharpen the GP, so cheap runs are bought only while they are informative
    enough per unit cost. ``n`` > 1 takes the top-n pairs of one acquisition pass (no
    fantasies between them), which is cheap and fine for small batches.
    """
    from botorch.acquisition.cost_aware import InverseCostWeightedUtility
    from botorch.acquisition.max_value_entropy_search import qMultiFidelityMaxValueEntropy
    from botorch.acquisition.utils import project_to_target_fidelity
    from botorch.models.cost import AffineFidelityCostModel

    d = pool.shape[1]
    target = max(fidelities)
    torch.manual_seed(seed)
    model = fit_multifidelity_gp(weights, fidelity, losses)
    f_lo, f_hi = min(fidelities), max(fidelities)
    c_lo, c_hi = costs[fidelities.index(f_lo)], costs[fidelities.index(f_hi)]
    slope = (c_hi - c_lo) / (f_hi - f_lo) if f_hi > f_lo else 0.0
    cost_model = AffineFidelityCostModel(fidelity_weights={d: slope},
                                         fixed_cost=c_lo - slope * f_lo)
    pool_t = torch.as_tensor(pool, dtype=torch.float64)
    target_set = torch.cat([pool_t, torch.full((len(pool), 1), target,
                                               dtype=torch.float64)], dim=-1)
    acq = qMultiFidelityMaxValueEntropy(
        model, candidate_set=target_set, num_fantasies=16,
        cost_aware_utility=InverseCostWeightedUtility(cost_model=cost_model),
        project=lambda X: project_to_target_fidelity(X, target_fidelities={d: target}, d=d + 1))
    done = {(round(float(f), 9), tuple(np.round(w, 9))) for w, f in zip(weights, fidelity,
                                                                         strict=True)}
    rows, keys = [], []
    for f in fidelities:
        for i in range(len(pool)):
            if (round(float(f), 9), tuple(np.round(pool[i], 9))) not in done:
                rows.append(np.append(pool[i], f))
                keys.append((i, float(f)))
    if not rows:
        raise ValueError("every (mixture, fidelity) pair of the pool has been run")
    with torch.no_grad():
        values = torch.cat([acq(torch.as_tensor(np.asarray(rows[i:i + 256]))[:, None, :])
                            for i in range(0, len(rows), 256)])
    order = torch.argsort(values, descending=True)[:n]
    return [keys[int(i)] for i in order]
