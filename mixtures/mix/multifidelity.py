"""Multi-fidelity mixture search that buys cheap runs only while they predict the target.

Why not plain cost-aware acquisition: a multi-fidelity GP's prior (and the fidelity kernels
built for it) assume cheap runs track the target; max-value entropy divided by cost then
keeps buying cheap runs that rank mixtures poorly, and loses to single-fidelity search
(issue 16: cheap sizes with rank correlation 0.55/0.65 made it worse than random). So each
cheap level has to *earn* trust from the data:

* **Probing.** A cheap level is first run at mixtures that already have a target run
  (pairs), within a small allowance (``mfplan.PROBE_FRACTION`` of the target spend).
  Until a level is trusted, target runs are chosen exactly as single-fidelity BO chooses
  them, so the worst case is single-fidelity plus the allowance.
* **Trust.** A level is trusted when the rank correlation of its losses with the target's
  over the paired mixtures reaches ``rank_corr_needed(pairs)`` and the multi-task GP's
  fitted correlation with the target (``level_correlations``) is at least
  ``MIN_MODEL_CORR``. Trust is re-assessed on every call, so a level that stops
  predicting loses it.
* **Search.** With trusted levels, a multi-task GP (BoTorch ``MultiTaskGP``: ICM kernel on
  sqrt-weights x level, per-level standardization) over the target and trusted levels, and
  multi-fidelity max-value entropy with an inverse-cost utility (``qMultiFidelityMaxValue
  Entropy`` + ``InverseCostWeightedUtility``, ADMIRE-BayesOpt style) rank every
  (mixture, level) pair by information about the best target loss per unit cost; cheap
  picks win only over the best target pair and within corr^2 x the target spend, and
  target runs are chosen by qLogEI on the GP's target posterior (``mfplan``).

Levels are indices into ``FidelityLevels.values`` (ascending); the last is the target.
This module holds the model, the trust test and the acquisition; ``mfplan`` decides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import spearmanr

from metamix.mixtures.mix.bo_models import SqrtWeights, _fit

#: Rank correlation a cheap level needs on its paired mixtures to be trusted, by number of
#: pairs: few pairs need a high correlation, more pairs a lower one. Nothing below 5 pairs:
#: on 4, 0.8 (at most one adjacent swap) happens by chance 1 time in 6 for an unrelated
#: level, more often for a weakly related one, and a level trusted by chance misleads the
#: search for several steps (``bench/mf_search.py``, cheap rank correlation 0.3: 4 of 20
#: seeds). On 5 pairs 0.9 (one adjacent swap) happens by chance 1 time in 24; the GP's
#: fitted correlation must then also pass.
TRUST_THRESHOLDS = ((5, 0.9), (6, 0.7), (8, 0.55))
#: The multi-task GP's fitted correlation a level also needs (0 = an unrelated level).
MIN_MODEL_CORR = 0.5


@dataclass(frozen=True)
class FidelityLevels:
    """Fidelity values (ascending; the last is the target) and the cost of one run each."""

    values: tuple[float, ...]
    costs: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.values) != len(self.costs) or not self.values:
            raise ValueError("one cost per fidelity level is needed")
        if list(self.values) != sorted(set(self.values)):
            raise ValueError(f"fidelity levels must be distinct and ascending: {self.values}")
        if any(c <= 0 for c in self.costs):
            raise ValueError(f"costs must be > 0: {self.costs}")

    @property
    def target(self) -> int:
        return len(self.values) - 1

    def index(self, fidelity: np.ndarray) -> np.ndarray:
        """Level index of each fidelity value (matched within 1e-9)."""
        fidelity = np.asarray(fidelity, dtype=np.float64)
        vals = np.asarray(self.values)
        idx = np.abs(fidelity[:, None] - vals[None, :]).argmin(axis=1)
        off = np.abs(vals[idx] - fidelity) > 1e-9
        if off.any():
            raise ValueError(f"fidelity {fidelity[off][0]:g} is not one of {self.values}")
        return idx


@dataclass
class LevelTrust:
    """What the data says about one cheap level (all figures vs the target level)."""

    fidelity: float
    cost: float
    runs: int
    pairs: int
    pair_rank_corr: float           # NaN with < 3 pairs
    model_corr: float = math.nan    # fitted task correlation; NaN when not fitted
    trusted: bool = False
    reason: str = ""


def paired_rank_corr(weights: np.ndarray, level: np.ndarray, losses: np.ndarray,
                     cheap: int, target: int) -> tuple[float, int]:
    """Spearman of cheap vs target losses over mixtures run at both (weights within 1e-9)."""
    tw, tl = weights[level == target], losses[level == target]
    cw, cl = weights[level == cheap], losses[level == cheap]
    if not len(tw) or not len(cw):
        return math.nan, 0
    dist = np.abs(cw[:, None, :] - tw[None, :, :]).max(axis=2)
    ci, ti = np.nonzero(dist <= 1e-9)
    _, first = np.unique(ti, return_index=True)  # one pair per target run
    ci, ti = ci[first], ti[first]
    if len(ti) < 3 or np.ptp(cl[ci]) == 0 or np.ptp(tl[ti]) == 0:
        return math.nan, int(len(ti))
    return float(spearmanr(cl[ci], tl[ti]).statistic), int(len(ti))


#: L-BFGS cap for multi-task GP fits: with a near-perfect cheap level the task-covariance
#: parameters drift for hundreds of iterations without changing the fit.
TASK_GP_MAXITER = 150


def fit_task_gp(weights: np.ndarray, level: np.ndarray, losses: np.ndarray, n_levels: int,
                seed: int = 0, init: dict | None = None,
                maxiter: int | None = TASK_GP_MAXITER):
    """BoTorch MultiTaskGP on [w, level] -> -loss, ICM kernel, per-level standardization.

    No prior on the task correlations: BoTorch's default (Beta(2.5, 1.5), mean 0.63) makes
    an unrelated cheap level look correlated when there are few runs, which is the failure
    this module exists to avoid. ``init``: a previous fit's state dict (warm start);
    ``maxiter`` caps L-BFGS iterations (with a warm start, a few dozen suffice).
    """
    from botorch.models import MultiTaskGP
    from botorch.models.transforms.outcome import StratifiedStandardize

    d = weights.shape[1]
    torch.manual_seed(seed)
    X = torch.as_tensor(np.hstack([weights, np.asarray(level, np.float64)[:, None]]),
                        dtype=torch.float64)
    Y = -torch.as_tensor(np.asarray(losses, np.float64)).reshape(-1, 1)
    model = MultiTaskGP(
        X, Y, task_feature=d, all_tasks=list(range(n_levels)), output_tasks=[n_levels - 1],
        task_covar_prior=None, input_transform=SqrtWeights(d),
        outcome_transform=StratifiedStandardize(stratification_idx=d,
                                                all_task_values=torch.arange(n_levels)))
    _fit(model, init, maxiter)
    return model


def level_correlations(model) -> np.ndarray:
    """Fitted correlation of every level with the target (last) level, from the ICM task
    covariance B: B[l, T] / sqrt(B[l, l] B[T, T])."""
    task_kernel = next(k for k in model.covar_module.kernels if hasattr(k, "covar_matrix"))
    with torch.no_grad():
        B = task_kernel.covar_matrix.detach().numpy()
    s = np.sqrt(np.clip(np.diag(B), 1e-300, None))
    return (B / np.outer(s, s))[:, -1]


def mf_acquisition(model, cand_w: np.ndarray, cand_level: np.ndarray, costs: np.ndarray,
                   max_set: np.ndarray, target: int) -> np.ndarray:
    """Multi-fidelity max-value entropy per unit cost of each (mixture, level) candidate.

    ``max_set``: mixtures whose target loss could be the best (the max-values are sampled
    over them at the target level). ``costs[l]``: cost of a run at level l.
    """
    from botorch.acquisition.cost_aware import InverseCostWeightedUtility
    from botorch.acquisition.max_value_entropy_search import qMultiFidelityMaxValueEntropy
    from botorch.models.deterministic import GenericDeterministicModel

    d = cand_w.shape[1]
    cost_t = torch.as_tensor(np.asarray(costs, np.float64))
    cost_model = GenericDeterministicModel(
        lambda X: cost_t[X[..., d].round().long()].unsqueeze(-1))

    def project(X: torch.Tensor) -> torch.Tensor:
        X = X.clone()
        X[..., d] = float(target)
        return X

    max_t = torch.as_tensor(np.hstack([max_set, np.full((len(max_set), 1), float(target))]))
    acq = qMultiFidelityMaxValueEntropy(
        model, candidate_set=max_t, num_fantasies=16, project=project,
        cost_aware_utility=InverseCostWeightedUtility(cost_model=cost_model))
    X = torch.as_tensor(np.hstack([cand_w, np.asarray(cand_level, np.float64)[:, None]]))
    with torch.no_grad():
        return torch.cat([acq(X[i:i + 256][:, None, :])
                          for i in range(0, len(X), 256)]).numpy()


def rank_corr_needed(pairs: int) -> float:
    """Pair rank correlation needed for trust with ``pairs`` pairs (inf: too few pairs)."""
    needed = math.inf
    for at_least, corr in TRUST_THRESHOLDS:
        if pairs >= at_least:
            needed = corr
    return needed


def assess_levels(weights: np.ndarray, level: np.ndarray, losses: np.ndarray,
                  levels: FidelityLevels, seed: int = 0, models: dict | None = None,
                  init: dict | None = None, maxiter: int | None = None) -> list[LevelTrust]:
    """Trust of every cheap level: its paired rank correlation with the target must reach
    ``rank_corr_needed(pairs)``, then a multi-task GP on that level and the target must
    fit a correlation of at least ``MIN_MODEL_CORR`` (see the module docstring).
    ``models``: filled with {level: that GP} for reuse; ``init``/``maxiter``: warm start
    (see ``fit_task_gp``)."""
    out = []
    target = levels.target
    for lvl in range(target):
        rho, pairs = paired_rank_corr(weights, level, losses, lvl, target)
        needed = rank_corr_needed(pairs)
        t = LevelTrust(levels.values[lvl], levels.costs[lvl], int((level == lvl).sum()),
                       pairs, rho)
        if math.isinf(needed):
            t.reason = f"{pairs} of {TRUST_THRESHOLDS[0][0]} pairs with the target"
        elif not (math.isfinite(rho) and rho >= needed):
            t.reason = f"rank corr {rho:.2f} < {needed:g} on {pairs} pairs"
        else:
            rows = (level == lvl) | (level == target)
            model = fit_task_gp(weights[rows], (level[rows] == target).astype(np.int64),
                                losses[rows], 2, seed=seed, init=init,
                                maxiter=maxiter or TASK_GP_MAXITER)
            t.model_corr = float(level_correlations(model)[0])
            if models is not None:
                models[lvl] = model
            t.trusted = t.model_corr >= MIN_MODEL_CORR
            t.reason = (f"rank corr {rho:.2f} on {pairs} pairs, GP corr {t.model_corr:.2f}"
                        + ("" if t.trusted else f" < {MIN_MODEL_CORR:g}"))
        out.append(t)
    return out
