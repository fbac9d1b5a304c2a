"""Search for good mixtures: RegMix top-k averaging and BoTorch Bayesian optimization.

* ``regmix_search``: score 10^5+ Dirichlet candidates with a fitted surrogate, average the
  top-k (RegMix: averaging is more robust than the single arg-min of a noisy surrogate).
* ``bo_suggest``: GP + qLogExpectedImprovement, optimized over the capped simplex
  (sum(w) = 1 via ``equality_constraints``, bounds = availability caps), q proposals.
* ``bo_suggest_pool``: the same acquisition, choosing from a finite candidate pool.
* Both take an optional fitted non-GP ``surrogate`` (what K-fold chose, see ``choice``):
  the acquisition then uses its predictions as the posterior mean and the GP only for the
  uncertainty (``SurrogateMeanGP``); continuous search then scores Dirichlet candidates.
* Multi-fidelity search lives in ``multifidelity``.
All losses are minimized; BoTorch maximizes, so models are fitted on -loss.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from botorch.models.model import Model
from botorch.posteriors.gpytorch import GPyTorchPosterior
from gpytorch.distributions import MultivariateNormal

from metamix.mixtures.mix.bo_models import fit_gp
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


class SurrogateMeanGP(Model):
    """A BoTorch model whose posterior mean is a fitted surrogate's prediction (-loss) and
    whose covariance is a GP's: acquisition with the surrogate K-fold ranked best, and the
    GP's knowledge of where the runs are (uncertainty shrinks near them).

    The surrogate is not differentiable, so this model is for discrete candidate sets.
    """

    num_outputs = 1

    def __init__(self, gp: Model, surrogate: Surrogate) -> None:
        super().__init__()
        self.gp = gp
        self.surrogate = surrogate

    def posterior(self, X: torch.Tensor, output_indices=None, observation_noise=False,
                  posterior_transform=None, **kwargs) -> GPyTorchPosterior:
        mvn = self.gp.posterior(X).distribution
        flat = X.detach().reshape(-1, X.shape[-1]).numpy()
        mean = -torch.as_tensor(self.surrogate.predict(flat)).reshape(mvn.mean.shape)
        return GPyTorchPosterior(MultivariateNormal(mean.to(mvn.mean),
                                                    mvn.lazy_covariance_matrix))


def _acq_model(weights: np.ndarray, losses: np.ndarray, extra: np.ndarray | None,
               surrogate: Surrogate | None, seed: int, gp: Model | None = None,
               init: dict | None = None, maxiter: int | None = None):
    """The acquisition's model: ``gp`` if given (already fitted on these runs), else a
    fresh GP fit (``init``/``maxiter``: warm start); wrapped when a surrogate leads."""
    if gp is None:
        torch.manual_seed(seed)
        gp = fit_gp(weights, losses, extra, init=init, maxiter=maxiter)
    return gp if surrogate is None else SurrogateMeanGP(gp, surrogate)


def bo_suggest(weights: np.ndarray, losses: np.ndarray, n: int = 1,
               caps: np.ndarray | None = None, seed: int = 0,
               num_restarts: int = 8, raw_samples: int = 256,
               surrogate: Surrogate | None = None, n_candidates: int = 20_000,
               gp: Model | None = None) -> np.ndarray:
    """Next ``n`` mixtures to run (continuous): argmax of qLogEI on the capped simplex.

    With a non-GP ``surrogate`` (fitted on the same runs) the acquisition is maximized over
    ``n_candidates`` seeded Dirichlet candidates around the runs instead of by gradients.
    """
    from botorch.optim import optimize_acqf, optimize_acqf_discrete

    d = weights.shape[1]
    caps = np.ones(d) if caps is None else np.asarray(caps, dtype=np.float64)
    if caps.sum() < 1.0 - 1e-9:
        raise ValueError(f"caps sum to {caps.sum():.4g} < 1: no mixture can satisfy them")
    model = _acq_model(weights, losses, None, surrogate, seed, gp)
    acq = _log_ei(model, float(np.min(losses)))
    if surrogate is not None:
        cands = torch.as_tensor(dirichlet_candidates(weights.mean(axis=0), n_candidates,
                                                     seed=seed, caps=caps))
        picked, _ = optimize_acqf_discrete(acq, q=n, choices=cands)
        return picked.detach().numpy()
    bounds = torch.stack([torch.zeros(d, dtype=torch.float64),
                          torch.as_tensor(caps, dtype=torch.float64)])
    # a failed restart draws new initial conditions from torch's global generator: seeded
    # here, the same runs and model give the same proposals (``mix suggest``'s fit cache)
    torch.manual_seed(seed)
    cand, _ = optimize_acqf(acq, bounds=bounds, q=n,
                            num_restarts=num_restarts, raw_samples=raw_samples,
                            equality_constraints=_simplex_constraint(d),
                            options={"seed": seed})
    out = cand.detach().numpy().clip(0.0, caps)
    return out / out.sum(axis=1, keepdims=True)


def bo_suggest_pool(weights: np.ndarray, losses: np.ndarray, pool: np.ndarray, n: int = 1,
                    extra: np.ndarray | None = None, pool_extra: np.ndarray | None = None,
                    seed: int = 0, surrogate: Surrogate | None = None,
                    gp: Model | None = None, init: dict | None = None,
                    maxiter: int | None = None) -> np.ndarray:
    """Indices into ``pool`` of the next ``n`` mixtures (greedy sequential qLogEI).

    ``extra``/``pool_extra``: optional per-run features (MDE, or a cheap fidelity's
    prediction) appended to the GP inputs. ``gp``: a GP already fitted on these runs;
    ``init``/``maxiter``: warm start of a fresh fit (BO loops pass the last step's).
    """
    from botorch.optim import optimize_acqf_discrete

    model = _acq_model(weights, losses, extra, surrogate, seed, gp, init, maxiter)
    choices = np.hstack([pool, pool_extra]) if pool_extra is not None else pool
    choices_t = torch.as_tensor(choices, dtype=torch.float64)
    picked, _ = optimize_acqf_discrete(_log_ei(model, float(np.min(losses))),
                                       q=min(n, len(pool)), choices=choices_t)
    return np.array([_row_index(choices_t, row) for row in picked])


def _row_index(table: torch.Tensor, row: torch.Tensor) -> int:
    return int(torch.argmin((table - row).abs().sum(dim=-1)))
