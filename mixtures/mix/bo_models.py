"""BoTorch GPs over mixtures: the sqrt (Hellinger) input transform and model builders.

Why a transform inside the model rather than feeding sqrt(w): acquisition functions are
then optimized in weight space, where the simplex constraint sum(w) = 1 and the per-domain
caps are linear, which ``optimize_acqf(equality_constraints=...)`` handles.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from botorch.models.transforms.input import InputTransform

#: Smooths sqrt at 0 so acquisition gradients stay finite on the simplex boundary.
SQRT_OFFSET = 1e-6


class SqrtWeights(InputTransform, torch.nn.Module):
    """x -> sqrt(x + offset) on the first ``n_weights`` columns; other columns unchanged."""

    def __init__(self, n_weights: int) -> None:
        super().__init__()
        self.n_weights = n_weights
        self.transform_on_train = True
        self.transform_on_eval = True
        self.transform_on_fantasize = True

    def transform(self, X: torch.Tensor) -> torch.Tensor:
        w = torch.sqrt(X[..., : self.n_weights].clamp_min(0.0) + SQRT_OFFSET)
        return torch.cat([w, X[..., self.n_weights:]], dim=-1)


def _fit(model: torch.nn.Module) -> None:
    from botorch.fit import fit_gpytorch_mll
    from gpytorch.mlls import ExactMarginalLogLikelihood

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small-data fits warn about priors/convergence
        fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))


def fit_gp(weights: np.ndarray, losses: np.ndarray, extra: np.ndarray | None = None,
           kernel: str = "matern"):
    """SingleTaskGP on -loss (BoTorch maximizes) with sqrt-weight inputs; fitted.

    ``kernel``: "matern" (Matern-5/2 with one lengthscale per input: measured better on
    the RegMix runs at 32-64 runs than the default) or "rbf" (BoTorch's default RBF with
    dimension-scaled lengthscale priors).
    """
    from botorch.models import SingleTaskGP
    from gpytorch.kernels import MaternKernel, ScaleKernel

    X = np.hstack([weights, extra]) if extra is not None and extra.size else weights
    train_x = torch.as_tensor(X, dtype=torch.float64)
    train_y = -torch.as_tensor(np.asarray(losses, dtype=np.float64)).reshape(-1, 1)
    if kernel == "matern":
        covar = ScaleKernel(MaternKernel(nu=2.5, ard_num_dims=X.shape[1]))
    elif kernel == "rbf":
        covar = None
    else:
        raise ValueError(f"unknown GP kernel {kernel!r} (matern or rbf)")
    from botorch.exceptions.errors import ModelFittingError

    model = SingleTaskGP(train_x, train_y, covar_module=covar,
                         input_transform=SqrtWeights(weights.shape[1]))
    try:
        _fit(model)
    except ModelFittingError:
        if kernel == "rbf":
            raise
        # Matern-ARD without priors can fail on a handful of points; BoTorch's default
        # kernel has lengthscale priors and fits where it does not.
        return fit_gp(weights, losses, extra, kernel="rbf")
    return model


def fit_multifidelity_gp(weights: np.ndarray, fidelity: np.ndarray, losses: np.ndarray):
    """SingleTaskMultiFidelityGP on [w, fidelity] -> -loss; fidelity is the last column.

    Losses are centred per fidelity level first: a small proxy's loss sits far above the
    target's, and that offset is a nuisance the GP should not spend its kernel on.
    """
    from botorch.models import SingleTaskMultiFidelityGP

    d = weights.shape[1]
    train_x = torch.as_tensor(np.hstack([weights, np.asarray(fidelity).reshape(-1, 1)]),
                              dtype=torch.float64)
    train_y = -torch.as_tensor(center_per_fidelity(losses, fidelity)).reshape(-1, 1)
    model = SingleTaskMultiFidelityGP(train_x, train_y, data_fidelities=[d],
                                      input_transform=SqrtWeights(d))
    _fit(model)
    return model


def center_per_fidelity(losses: np.ndarray, fidelity: np.ndarray) -> np.ndarray:
    """Standardize each fidelity level on its own (ranks are what transfer across scales).

    A level with fewer than 3 runs has no trustworthy spread: it is centred and divided by
    the spread of the best-populated level instead.
    """
    losses = np.asarray(losses, dtype=np.float64).copy()
    fidelity = np.asarray(fidelity)
    levels, counts = np.unique(fidelity, return_counts=True)
    ref_std = losses[fidelity == levels[np.argmax(counts)]].std() or 1.0
    out = losses.copy()
    for level, count in zip(levels, counts, strict=True):
        mask = fidelity == level
        std = losses[mask].std() if count >= 3 else 0.0
        out[mask] = (losses[mask] - losses[mask].mean()) / (std if std > 0 else ref_std)
    return out
