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
  mf-bo       SingleTaskMultiFidelityGP on [w, fidelity] with the cheap predictions as
              fidelity-0.04 observations at every pool mixture (cost 1/25000 each:
              1M params x 1B tokens vs 1B x 25B) + multi-fidelity MES / cost; starts as bo+cheap

    .venv/bin/python bench/regmix_search.py [--seeds 10] [--budget 20] [--cheap-runs 512]

--problem 60m is a real two-fidelity problem: the 256 test mixtures were run at both 1M and
60M; per seed a pool of 192, target 60M, 1M runs bought at 1/60 the cost (equal tokens
assumed). Methods: random, screen (all pool mixtures at 1M, then 60M in 1M order), bo
(60M only), mf-bo (MF-MES / cost chooses mixture and fidelity each step).
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

from metamix.mixtures.mix.search import bo_suggest_pool, mf_bo_suggest_pool  # noqa: E402
from metamix.mixtures.mix.surrogates import make_surrogate  # noqa: E402

POOL, N_START, CHEAP_FIDELITY, CHEAP_COST = 48, 3, 0.04, 1 / 25_000
#: --problem 60m: 1M and 60M models saw the same mixtures; cost ratio assumes equal tokens.
POOL_60M, FID_1M, COST_1M_VS_60M = 192, 1 / 60, 1 / 60


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
    seen = list(start)
    cheap_cost = CHEAP_COST * len(pool_w)
    while best not in seen and len(seen) < budget:
        w = np.vstack([pool_w, pool_w[seen]])
        fid = np.r_[np.full(len(pool_w), CHEAP_FIDELITY), np.ones(len(seen))]
        loss = np.r_[cheap, truth[seen]]
        rest = np.setdiff1d(np.arange(len(pool_w)), seen)
        (i, _), = mf_bo_suggest_pool(w, fid, loss, pool_w[rest], (CHEAP_FIDELITY, 1.0),
                                     (CHEAP_COST, 1.0), n=1, seed=seed)
        seen.append(int(rest[i]))
    return _cost(seen, best, budget), cheap_cost


def run_mf_real(pool_w, truth, cheap, best, budget, start, seed=0,
                max_steps=40, cheap_batch=16) -> float:
    """Real two-fidelity loop; returns cost. Each step ranks (mixture, fidelity) pairs by
    MF-MES / cost: a target pair on top is bought alone, otherwise the cheap pairs among
    the top ``cheap_batch`` are bought together (1M runs are cheap to batch)."""
    target_seen, cheap_seen = list(start), list(start)
    cost = len(start) * (1 + COST_1M_VS_60M)
    for _ in range(max_steps):
        if best in target_seen or len(target_seen) >= budget:
            break
        w = np.vstack([pool_w[cheap_seen], pool_w[target_seen]])
        fid = np.r_[np.full(len(cheap_seen), FID_1M), np.ones(len(target_seen))]
        loss = np.r_[cheap[cheap_seen], truth[target_seen]]
        picks = mf_bo_suggest_pool(w, fid, loss, pool_w, (FID_1M, 1.0),
                                   (COST_1M_VS_60M, 1.0), n=cheap_batch, seed=seed)
        if picks[0][1] == 1.0:
            target_seen.append(int(picks[0][0]))
            cost += 1
            continue
        for i, f in picks:
            if f != 1.0:
                cheap_seen.append(int(i))
                cost += COST_1M_VS_60M
    return cost if best in target_seen else budget + 1


def main_60m(args: argparse.Namespace) -> None:
    """Pool of 192 of the 256 test mixtures; target 60M loss; real 1M runs as cheap fidelity."""
    m1, m60 = load_split("test_1m"), load_split("test_60m")
    assert m1["index"] == m60["index"] and np.allclose(m1["weights"], m60["weights"])
    wanted = args.methods.split(",") + ["screen"]
    methods = [m for m in ("random", "screen", "bo", "mf-bo") if m in wanted]
    costs: dict[str, list[float]] = {m: [] for m in methods}
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        idx = np.sort(rng.permutation(len(m1["index"]))[:POOL_60M])
        w, truth, cheap = m1["weights"][idx], target(m60)[idx], target(m1)[idx]
        best = int(np.argmin(truth))
        start = list(rng.permutation(POOL_60M)[:N_START])
        t0 = time.perf_counter()
        for m in methods:
            if m == "random":
                costs[m].append(_cost(list(rng.permutation(POOL_60M)), best, POOL_60M))
            elif m == "screen":  # run every pool mixture at 1M, then 60M in 1M-loss order
                order = list(np.argsort(cheap))
                costs[m].append(_cost(order, best, POOL_60M) + POOL_60M * COST_1M_VS_60M)
            elif m == "bo":
                costs[m].append(run_bo(w, truth, best, args.budget, start, seed=seed))
            elif m == "mf-bo":
                costs[m].append(run_mf_real(w, truth, cheap, best, args.budget, start, seed))
        print(f"seed {seed}: " + " ".join(f"{m}={costs[m][-1]:.3g}" for m in methods)
              + f" [{time.perf_counter() - t0:.0f}s]", flush=True)
    _table(costs, POOL_60M, args, "60M runs (1M run = 1/60)")


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
    parser.add_argument("--problem", choices=("1B", "60m"), default="1B")
    args = parser.parse_args()
    require_data()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    if args.problem == "60m":
        main_60m(args)
        return
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
