"""Do rankers chosen per domain generalize to a held-out family better than one weighting?

From a finished Meta-rater sweep: the candidates are equal weights and the best
``--candidates`` single scores on the fit families' fit halves. A *swap* run ranks one
domain by a candidate and every other domain by equal weights; for each held-out family the
domain's ranker is the candidate whose swap has the best objective over the *other*
families' fit halves (``--choose mean``: their mean z, ``worst``: the worst one), each fold
screening its own candidates without the held-out family. The composite of the chosen
rankers trains a proxy that is judged on the held-out family's report half, against the
sweep's random draws (noise std; negative = better). The last row (``all``) is chosen on
every family: an in-sample ceiling, not a verdict.

    .venv/bin/python bench/metarater_per_domain.py --config configs/demo.yaml [--choose worst]

Runs are kept in ``<run>/bench_per_domain/runs.parquet``. Needs `make metarater` first.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pyarrow as pa
from rich.console import Console

from metamix.config import load_config
from metamix.mixtures.metarater.families import (
    FamilyScale,
    families_of,
    family_table,
    gaps_to_random,
)
from metamix.mixtures.metarater.run import open_context, proxy_task
from metamix.mixtures.metarater.summary import run_values
from metamix.mixtures.sweep import RunsTable, run_sweep
from metamix.pipeline.selection.engine import Selection

EQUAL = "equal"
ALL = "all"


def choose(fit: Mapping[str, Mapping[str, float]], domains: Sequence[str],
           candidates: Sequence[str], families: Sequence[str],
           aggregate: Callable[[list[float]], float]) -> dict[str, str]:
    """domain -> candidate whose swap run is best over ``families`` (equal weights are
    kept where no candidate beats them)."""
    out = {}
    for d in domains:
        def score(c: str, d: str = d) -> float:
            return aggregate([fit[EQUAL if c == EQUAL else f"swap:{d}={c}"][f]
                              for f in families])
        best = min([EQUAL, *candidates], key=score)
        if best != EQUAL:
            out[d] = best
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/demo.yaml")
    ap.add_argument("--candidates", type=int, default=6, help="single scores per fold")
    ap.add_argument("--choose", choices=["mean", "worst"], default="mean")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    aggregate = (lambda v: float(np.max(v))) if args.choose == "worst" else (
        lambda v: float(np.mean(v)))
    cfg = load_config(args.config)
    mcfg = cfg.metarater
    console = Console()
    families = families_of(mcfg.targets)
    names = list(families)
    with open_context(cfg, mcfg, console) as (ctx, _, _):
        rows = RunsTable(ctx.out / "runs.parquet", ctx.key).ok_rows()
        values = {k: run_values(mcfg.targets, r) for k, r in rows.items()}
        random_ids = sorted(k for k in rows if k.startswith("random-"))
        scale = FamilyScale.from_random(values, random_ids, mcfg.targets)
        fit = family_table(values, scale, "fit", families)
        singles = [k for k in rows if k.startswith("single-")]

        def screen(fs: list[str]) -> list[str]:
            return sorted(singles, key=lambda s: aggregate([fit[s][f] for f in fs]))[
                :args.candidates]

        folds = {h: [f for f in names if f != h] for h in names} | {ALL: names}
        screened = {h: screen(fs) for h, fs in folds.items()}
        kept: dict[str, pa.Table] = {}

        def kept_of(run: str) -> pa.Table:
            if run not in kept:
                kept[run] = ctx.engine.select(json.loads(rows[run]["weights"]), ctx.cut).kept
            return kept[run]

        domains = sorted(set(kept_of(EQUAL).column("domain").to_pylist()))

        def compose(chosen: Mapping[str, str]) -> Selection:
            parts = []
            for d in domains:
                table = kept_of(chosen.get(d, EQUAL))
                mask = np.asarray(table.column("domain").to_pylist(), dtype=object) == d
                parts.append(table.filter(pa.array(mask)))
            return Selection(pa.concat_tables(parts), {})

        union = sorted({c for v in screened.values() for c in v})
        table = RunsTable(cfg.run_dir / "bench_per_domain" / "runs.parquet", ctx.key)
        swaps = [proxy_task(ctx, f"swap:{d}={c}", "swap", {}, compose({d: c}), ctx.seed)
                 for d in domains for c in union]
        done = run_sweep(swaps, table, workers=args.workers, console=console, label="swaps")
        fit = {**fit, **family_table({k: run_values(mcfg.targets, r) for k, r in done.items()},
                                     scale, "fit", families)}
        chosen = {h: choose(fit, domains, screened[h], fs, aggregate)
                  for h, fs in folds.items()}
        label = {h: f"per-domain:{args.choose}:{json.dumps(c, sort_keys=True)}"
                 for h, c in chosen.items()}
        composites = [proxy_task(ctx, label[h], "per_domain", {}, compose(c), ctx.seed)
                      for h, c in chosen.items()]
        done |= run_sweep(composites, table, workers=args.workers, console=console,
                          label="composites")
    every = {**values, **{k: run_values(mcfg.targets, r) for k, r in done.items()}}
    gaps = gaps_to_random(every, mcfg.targets, random_ids, list(label.values()))
    console.print(f"{len(union)} candidates, {len(swaps)} swap runs; choice by {args.choose}")
    console.print("chosen without | " + " | ".join(names) + " | mean | worst | rankers")
    held_out = {}
    for h, c in chosen.items():
        g = [gaps[label[h]][f] for f in names]
        if h != ALL:
            held_out[h] = g[names.index(h)]
        rankers = ", ".join(f"{d}={r.removeprefix('single-')}" for d, r in c.items())
        console.print(f"{h} | " + " | ".join(f"{v:+.1f}" for v in g)
                      + f" | {np.mean(g):+.2f} | {max(g):+.1f} | {rankers or 'equal'}")
    console.print("held out (each family judged on rankers chosen without it): "
                  + ", ".join(f"{f} {v:+.1f}" for f, v in held_out.items())
                  + f"; mean {np.mean(list(held_out.values())):+.2f}, worst "
                  f"{max(held_out.values()):+.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
