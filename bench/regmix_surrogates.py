"""Surrogate quality on RegMix's real proxy runs (target: Pile-CC validation loss).

Train on n of the 512 training 1M runs (n = 32/64/128/512; mean over 5 seeded subsamples
below 512), report Spearman of predicted vs actual loss on the 256 held-out 1M runs and on
the 64 1B runs, next to the README's LightGBM reference re-fits.

    .venv/bin/python bench/regmix_surrogates.py [--subsamples 5] [--sizes 32,64,128,512]

``ensemble`` = mean of the loglinear and gp predictions of the same fit (what
EnsembleSurrogate computes), so the GP is fitted once per subsample.
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

from regmix_data import load_split, require_data, target  # noqa: E402

from metamix.mixtures.mix.surrogates import make_surrogate, spearman  # noqa: E402

#: README reference re-fits, Spearman x100 on the 1B runs (LightGBM, RegMix settings).
LGBM_REFERENCE_1B = {32: None, 64: 55.9, 128: 86.0, 512: 96.2}
MODELS = ("linear", "loglinear", "lightgbm", "gp", "ensemble")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subsamples", type=int, default=5)
    parser.add_argument("--sizes", default="32,64,128,512")
    args = parser.parse_args()
    require_data()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    train, test_1m, test_1b = load_split("train_1m"), load_split("test_1m"), load_split("test_1B")
    X, y = train["weights"], target(train)
    evals = {"1M": (test_1m["weights"], target(test_1m)),
             "1B": (test_1b["weights"], target(test_1b))}
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        reps = 1 if n >= len(y) else args.subsamples
        scores = {m: {k: [] for k in evals} for m in MODELS}
        started = time.perf_counter()
        for rep in range(reps):
            idx = np.random.default_rng(rep).permutation(len(y))[:n]
            preds = {}
            for name in ("linear", "loglinear", "lightgbm", "gp"):
                model = make_surrogate(name).fit(X[idx], y[idx])
                preds[name] = {k: model.predict(q) for k, (q, _) in evals.items()}
            preds["ensemble"] = {k: (preds["loglinear"][k] + preds["gp"][k]) / 2 for k in evals}
            for name in MODELS:
                for k, (_, actual) in evals.items():
                    scores[name][k].append(spearman(preds[name][k], actual))
        for name in MODELS:
            rows.append((n, name, *(100 * np.nanmean(scores[name][k])
                                    if not np.all(np.isnan(scores[name][k])) else np.nan
                                    for k in evals),
                         100 * np.nanmin(scores[name]["1B"]) if not np.all(
                             np.isnan(scores[name]["1B"])) else np.nan))
        print(f"[{n} runs x {reps}: {time.perf_counter() - started:.0f}s]", flush=True)
    _print(rows)


def _fmt(x: float) -> str:
    return "  fail" if np.isnan(x) else f"{x:6.1f}"


def _print(rows: list[tuple]) -> None:
    print("\nSpearman x100 of predicted vs actual Pile-CC loss (train: n 1M runs)")
    print(f"{'runs':>4} {'surrogate':10} {'1M test':>7} {'1B':>6} {'1B min':>6} "
          f"{'LGBM ref 1B':>11} {'diff':>6} {'ratio':>6}")
    for n, name, s1m, s1b, s1b_min in rows:
        ref = LGBM_REFERENCE_1B.get(n)
        diff = f"{s1b - ref:+6.1f}" if ref is not None and not np.isnan(s1b) else "     -"
        ratio = f"{s1b / ref:6.2f}" if ref is not None and not np.isnan(s1b) else "     -"
        ref_s = f"{ref:11.1f}" if ref is not None else "  fails (-)"
        print(f"{n:4d} {name:10} {_fmt(s1m):>7} {_fmt(s1b)} {_fmt(s1b_min)} {ref_s} {diff} "
              f"{ratio}")


if __name__ == "__main__":
    main()
