"""Pool-based search cost on RegMix's 64 1B runs: how many 1B runs until the pool's best?

Per seed, 16 of the 64 1B mixtures are held out and the other 48 form the pool (so the
best mixture differs across seeds). The 1B mixtures were not run at 1M/60M (no weight
match: checked), so the cheap fidelity is a 1M surrogate (loglinear + GP ensemble fitted
on --cheap-runs of the 512 training 1M runs) evaluated at the pool mixtures: free, like
MDE features. With all 512 it is already a strong ranker; --cheap-runs 64 is the harder case.

Methods (cost = 1B runs spent until the pool's best is among them; capped at --budget,
a miss counts as budget + 1):
  random      uniform order (expectation (48 + 1) / 2 = 24.5)
  regmix      RegMix's choice: run mixtures in order of the 1M-surrogate prediction
  bo          3 random starts, then GP + qLogEI over the pool (1B runs only)
  bo+cheap    GP with the cheap prediction as an extra input; starts = top-3 by prediction
  mf-bo       ``mfplan.plan`` (what ``mix suggest`` runs with a fidelity column) with the
              cheap predictions as fidelity-0.04 runs at every pool mixture (cost 1/25000
              each: 1M params x 1B tokens vs 1B x 25B): the cheap level must earn trust on
              the target runs, then a multi-task GP + MF-MES / cost; starts as bo+cheap

    .venv/bin/python bench/regmix_search.py [--seeds 10] [--budget 20] [--cheap-runs 512]

Real multi-fidelity problems (RegMix 1M -> 60M, imperfect cheap fidelities) are in
``bench/mf_search.py``.
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

from metamix.mixtures.mix.search import bo_suggest_pool  # noqa: E402
from metamix.mixtures.mix.surrogates import make_surrogate  # noqa: E402

POOL, N_START, CHEAP_FIDELITY, CHEAP_COST = 48, 3, 0.04, 1 / 25_000


def _cost(order: list[int], best: int, budget: int) -> int:
    return order.index(best) + 1 if best in order[:budget] else budget + 1


def run_bo(pool_w, truth, best, budget, start, extra=None, seed=0) -> int:
    seen = list(start)
    while best not in seen and len(seen) < budget:
        rest = np.setdiff1d(np.arange(len(pool_w)), seen)
        ex = extra[seen][:, None] if extra is not None else None
        pex = extra[rest][:, None] if extra is not None else None
        pick = bo_suggest_pool(pool_w[seen], truth[seen], pool_w[rest], n=1, extra=ex,
                               pool_extra=pex, seed=seed)
        seen.append(int(rest[pick[0]]))
    return _cost(seen, best, budget)


def run_mf(pool_w, truth, cheap, best, budget, start, seed=0) -> tuple[int, float]:
    from metamix.mixtures.mix.mfplan import plan
    from metamix.mixtures.mix.multifidelity import FidelityLevels

    levels = FidelityLevels((CHEAP_FIDELITY, 1.0), (CHEAP_COST, 1.0))
    seen = list(start)
    cheap_cost = CHEAP_COST * len(pool_w)
    while best not in seen and len(seen) < budget:
        w = np.vstack([pool_w, pool_w[seen]])
        lvl = np.r_[np.zeros(len(pool_w), int), np.ones(len(seen), int)]
        loss = np.r_[cheap, truth[seen]]
        rest = np.setdiff1d(np.arange(len(pool_w)), seen)
        result = plan(w, lvl, loss, levels, n=1, seed=seed,
                      candidates=(pool_w[rest], np.ones(len(rest), int)))
        seen.append(int(rest[result.index[0]]))
    return _cost(seen, best, budget), cheap_cost


def _table(costs: dict[str, list[float]], pool: int, args: argparse.Namespace,
           unit: str) -> None:
    rand = 0.5 * (pool + 1)
    print(f"\nCost ({unit}) to find the best of a {pool}-mixture pool, {args.seeds} seeds, "
          f"budget {args.budget} target runs (miss = {args.budget + 1})")
    print(f"{'method':10} {'mean':>6} {'median':>6} {'max':>5} {'vs random':>9}")
    for m, c in costs.items():
        c = np.array(c)
        print(f"{m:10} {c.mean():6.2f} {np.median(c):6.1f} {c.max():5.1f} {c.mean() / rand:9.3f}")
    print(f"(random search expectation: {rand:.1f}; goal <= {rand / 5:.1f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", type=int, default=20)
    parser.add_argument("--methods", default="random,regmix,bo,bo+cheap,mf-bo")
    parser.add_argument("--cheap-runs", type=int, default=512,
                        help="1M training runs behind the cheap surrogate (fewer = weaker)")
    args = parser.parse_args()
    require_data()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    train, big = load_split("train_1m"), load_split("test_1B")
    started = time.perf_counter()
    sub = np.random.default_rng(0).permutation(len(train["index"]))[:args.cheap_runs]
    cheap_model = make_surrogate("ensemble").fit(train["weights"][sub], target(train)[sub])
    cheap_all = cheap_model.predict(big["weights"])
    print(f"[cheap 1M surrogate ({args.cheap_runs} runs) fitted in "
          f"{time.perf_counter() - started:.0f}s]", flush=True)
    truth_all = target(big)
    methods = args.methods.split(",")
    costs: dict[str, list[float]] = {m: [] for m in methods}
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        pool_idx = np.sort(rng.permutation(len(truth_all))[:POOL])
        w, truth, cheap = big["weights"][pool_idx], truth_all[pool_idx], cheap_all[pool_idx]
        best = int(np.argmin(truth))
        random_start = list(rng.permutation(POOL)[:N_START])
        cheap_start = list(np.argsort(cheap)[:N_START])
        t0 = time.perf_counter()
        for m in methods:
            if m == "random":
                costs[m].append(_cost(list(rng.permutation(POOL)), best, POOL))
            elif m == "regmix":
                costs[m].append(_cost(list(np.argsort(cheap)), best, POOL))
            elif m == "bo":
                costs[m].append(run_bo(w, truth, best, args.budget, random_start, seed=seed))
            elif m == "bo+cheap":
                costs[m].append(run_bo(w, truth, best, args.budget, cheap_start, cheap, seed))
            elif m == "mf-bo":
                c, extra = run_mf(w, truth, cheap, best, args.budget, cheap_start, seed)
                costs[m].append(c + extra)
        print(f"seed {seed}: " + " ".join(f"{m}={costs[m][-1]:.4g}" for m in methods)
              + f" [{time.perf_counter() - t0:.0f}s]", flush=True)
    _table(costs, POOL, args, "1B runs")


if __name__ == "__main__":
    main()
