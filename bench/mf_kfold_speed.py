"""K-fold surrogate comparison: cold GP fits per fold vs warm starts from the all-runs fit.

``metamix mix run`` K-fold scores every surrogate with and without MDE features; with a
cold GP fit per fold and validation domain the two GP variants were ~72% of the run
(issue 13). Warm starts (``surrogates.warm_start``: each fold's GP starts from the all-runs
hyper-parameters, ``WARM_MAXITER`` = 0: only conditioned on the fold's runs) must keep
the out-of-fold Spearman within 0.01. Tables:

* the demo's proxy runs (``out/demo/mix/runs.parquet`` after ``make mix``: 6 validation
  losses, MDE features), with the objective = mean loss, as ``mix run`` scores it;
* RegMix 1M runs (``../shared``): 32 and 64 runs, Pile-CC loss.

    .venv/bin/python bench/mf_kfold_speed.py [--runs out/demo/mix/runs.parquet]

Prints process CPU seconds (robust to other jobs on the machine, unlike wall time) and
Spearman of both, and the ratio. "cold" is the previous code: a fresh fit per fold;
"reused" fits each GP once on all runs (which ``mix run`` needs anyway for the winner)
and conditions it on each fold's runs.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from metamix.mixtures.mix.fitting import kfold_objective  # noqa: E402
from metamix.mixtures.mix.surrogates import (  # noqa: E402
    MultiTargetSurrogate,
    make_surrogate,
    spearman,
)


def cold_kfold(make, X: np.ndarray, Y: np.ndarray, tw: np.ndarray, k: int, seed: int) -> float:
    """The previous implementation: a cold multi-target fit per fold."""
    y = Y @ (tw / tw.sum())
    folds = np.array_split(np.random.default_rng(seed).permutation(len(y)), k)
    pred = np.empty_like(y)
    for held in folds:
        train = np.setdiff1d(np.arange(len(y)), held)
        pred[held] = MultiTargetSurrogate(make, tw).fit(X[train], Y[train]).predict(X[held])
    return spearman(pred, y)


def compare(label: str, X: np.ndarray, Y: np.ndarray, n_weights: int, folds: int = 5) -> None:
    tw = np.ones(Y.shape[1]) / Y.shape[1]
    for name in ("gp", "ensemble"):
        def make(name: str = name):
            return make_surrogate(name, n_weights=n_weights)

        t0 = time.process_time()
        rho_cold = cold_kfold(make, X, Y, tw, folds, 0)
        t1 = time.process_time()
        rho_warm = kfold_objective(make, X, Y, tw, folds, 0)[0]["spearman"]
        t2 = time.process_time()
        print(f"{label:26} {name:8} cold {t1 - t0:6.1f} CPU-s rho {rho_cold:.4f} | reused "
              f"(incl. all-runs fit) {t2 - t1:6.1f} CPU-s rho {rho_warm:.4f} | "
              f"{(t1 - t0) / (t2 - t1):4.1f}x less CPU, |d rho| {abs(rho_warm - rho_cold):.4f}",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="out/demo/mix/runs.parquet")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    path = Path(args.runs)
    if path.exists():
        from metamix.mixtures.mix.runs_table import load_runs_table

        runs = load_runs_table(path)
        fit = np.array([not str(i).startswith("final") for i in runs.ids]) \
            if runs.ids is not None else np.ones(runs.n_runs, bool)
        d = len(runs.domains)
        compare(f"demo ({fit.sum()} runs)", runs.weights[fit], runs.losses[fit], d)
        compare(f"demo +mde ({fit.sum()} runs)", runs.features()[fit], runs.losses[fit], d)
    else:
        print(f"skip demo: {path} not found (run `make mix` first)")
    from regmix_data import available, load_split, target

    if not available():
        print("skip RegMix: ../shared/benchmarks/regmix not found")
        return
    train = load_split("train_1m")
    for n in (32, 64):
        idx = np.random.default_rng(0).permutation(len(train["index"]))[:n]
        compare(f"RegMix 1M ({n} runs)", train["weights"][idx], target(train)[idx][:, None],
                train["weights"].shape[1])


if __name__ == "__main__":
    main()
