"""BoTorch GPs over mixtures: the sqrt (Hellinger) input transform and model builders.

Why a transform inside the model rather than feeding sqrt(w): acquisition functions are
then optimized in weight space, where the simplex constraint sum(w) = 1 and the per-domain
caps are linear, which ``optimize_acqf(equality_constraints=...)`` handles.
"""

from __future__ import annotations

import contextlib
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


def _fit(model: torch.nn.Module, init: dict | None = None, maxiter: int | None = None) -> None:
    """Maximize the marginal likelihood; ``init``: hyper-parameters to start from (a warm
    start from a fit on similar data), ``maxiter``: cap on L-BFGS iterations (0: keep
    ``init`` as it is and only condition on the data)."""
    from botorch.fit import fit_gpytorch_mll
    from gpytorch.mlls import ExactMarginalLogLikelihood

    loaded = False
    # keys of another kernel (a stored RBF fallback) do not fit this model either
    if init is not None and set(init) <= set(model.state_dict()):
        with contextlib.suppress(RuntimeError):  # another shape: start from the defaults
            model.load_state_dict(init, strict=False)
            loaded = True
    if maxiter == 0 and loaded:
        model.eval()
        return
    kwargs = {"optimizer_kwargs": {"options": {"maxiter": maxiter}}} if maxiter else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small-data fits warn about priors/convergence
        fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model), **kwargs)


def hyperparameters(model: torch.nn.Module) -> dict:
    """A fitted model's hyper-parameters: its state dict without data-dependent buffers
    (training data, outcome standardization), for ``init=`` warm starts."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()
            if "train" not in k and "outcome_transform" not in k}


def fit_gp(weights: np.ndarray, losses: np.ndarray, extra: np.ndarray | None = None,
           kernel: str = "matern", init: dict | None = None, maxiter: int | None = None):
    """SingleTaskGP on -loss (BoTorch maximizes) with sqrt-weight inputs; fitted.

    ``kernel``: "matern" (Matern-5/2 with one lengthscale per input: measured better on
    the RegMix runs at 32-64 runs than the default) or "rbf" (BoTorch's default RBF with
    dimension-scaled lengthscale priors). ``init``/``maxiter``: see ``_fit``.
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
        _fit(model, init, maxiter)
    except ModelFittingError:
        if kernel == "rbf":
            raise
        # Matern-ARD without priors can fail on a handful of points; BoTorch's default
        # kernel has lengthscale priors and fits where it does not.
        return fit_gp(weights, losses, extra, kernel="rbf")
    return model
