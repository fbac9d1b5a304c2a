"""Does what `metamix select` ships train a better model than random selection, on every
target family -- and did the weights fitted the old way (one target family, plain
first-fit) do so?

Trains fresh proxies on the documents in ``out/<run>/selected/``, on equal weights and the
best single score (as Meta-rater chose it) at the same budgets, and on ``--draws`` random
selections holding the same tokens per domain (the same length-neutral cut select uses),
then judges each on every family's report half: the gap to random in noise std with a 90%
bootstrap interval over the random draws. ``--before`` also fits weights the way Meta-rater
did before families (the regressor on ``--before-family``'s fit half only, no shrinkage,
plain first-fit at Meta-rater's budgets) from the Meta-rater sweep's own runs, and judges
them against that sweep's random draws. Needs `make select` first.

    .venv/bin/python bench/metarater_shipped.py --config configs/demo.yaml [--before]

Runs are kept in ``<run>/bench_shipped/runs.parquet``; a rerun resumes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from metamix.config import load_config
from metamix.mixtures.metarater.config import MetaraterConfig
from metamix.mixtures.metarater.families import FamilyScale, families_of, family_table, gap
from metamix.mixtures.metarater.lofo import fit_weights
from metamix.mixtures.metarater.plan import (
    features_to_weights,
    sample_features,
    weights_to_features,
)
from metamix.mixtures.metarater.run import open_context, proxy_task, selection_stats
from metamix.mixtures.metarater.selection_report import length_diagnostics
from metamix.mixtures.metarater.summary import run_values
from metamix.mixtures.sweep import RunsTable, run_sweep
from metamix.pipeline.selection.config import Cut
from metamix.pipeline.selection.engine import Selection


def shipped_selection(selected_dir: Path) -> Selection:
    files = sorted(selected_dir.glob("*.parquet"))
    if not files:
        raise SystemExit(f"no selected shards in {selected_dir}: run `make select` first")
    kept = pa.concat_tables([pq.read_table(f, columns=["id", "domain", "n_tokens"])
                             for f in files])
    return Selection(kept, {})


def _gaps(values: dict, random_ids: list[str], mcfg: MetaraterConfig, runs: list[str],
          seed: int) -> dict[str, dict[str, dict]]:
    """run -> family -> gap of the run against ``random_ids``, report half."""
    families = families_of(mcfg.targets)
    scale = FamilyScale.from_random(values, random_ids, mcfg.targets)
    report = family_table(values, scale, "report", families)
    out: dict[str, dict[str, dict]] = {}
    for run in runs:
        out[run] = {}
        for f in families:
            rng = np.random.default_rng([seed, *f.encode()])
            out[run][f] = gap(report[run][f], [report[r][f] for r in random_ids], None,
                              [], rng=rng).as_dict()
    return out


def _before_weights(ctx, names: list[str], directions: dict, family: str) -> dict:
    """The regressor on one family's fit-half objective (raw target values, as Meta-rater
    fitted before target families), searched without shrinkage."""
    mcfg = ctx.mcfg
    rows = RunsTable(ctx.out / "runs.parquet", ctx.key).ok_rows()
    chosen = [t for t in mcfg.targets if t.family_name == family]
    fit_ids = sorted(r for r in rows if r.startswith("dirichlet-"))
    x = np.array([weights_to_features(names, directions, json.loads(rows[r]["weights"]))
                  for r in fit_ids])
    y = np.array([np.mean([run_values(mcfg.targets, rows[r])["fit"][t.name] for t in chosen])
                  for r in fit_ids])
    fitted = fit_weights(x, y, lambda rng, n: sample_features(rng, names, directions,
                                                              mcfg.alpha, n),
                         folds=mcfg.folds, seed=ctx.seed, n_search_samples=mcfg.n_search_samples,
                         top_k=mcfg.top_k, lgbm_params=mcfg.regressor_params)
    return features_to_weights(names, directions, fitted.features)


def _table(title: str, gaps: dict[str, dict[str, dict]], labels: dict[str, str]) -> Table:
    out = Table(title=title)
    out.add_column("family")
    for label in labels.values():
        out.add_column(label, justify="right")
    families = list(next(iter(gaps.values())))
    for f in [*families, "mean"]:
        cells = []
        for run in labels:
            if f == "mean":
                cells.append(f"{np.mean([g['gap_std'] for g in gaps[run].values()]):+.1f}")
            else:
                g = gaps[run][f]
                lo, hi = g["gap_interval"]
                cells.append(f"{g['gap_std']:+.1f} [{lo:+.1f}, {hi:+.1f}]")
        out.add_row(f, *cells)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/demo.yaml")
    ap.add_argument("--draws", type=int, default=16, help="random selections (>= 16)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--before", action="store_true",
                    help="also judge weights fitted on one family the way Meta-rater did")
    ap.add_argument("--before-family", default="gnu")
    args = ap.parse_args()
    console = Console()
    cfg = load_config(args.config)
    mcfg = cfg.metarater or MetaraterConfig()
    shipped = shipped_selection(cfg.run_dir / "selected")
    budgets = shipped.tokens_per_domain()
    cut = Cut(mode="token_budget", budgets=tuple(sorted(budgets.items())),
              length_neutral=cfg.select.length_neutral if cfg.select else True)
    summary = json.loads((cfg.run_dir / "metarater" / "summary.json").read_text())
    single = summary["held_out"].get("single_id")
    with open_context(cfg, mcfg, console) as (ctx, names, directions):
        sweep_ctx = ctx
        ctx = dataclasses.replace(ctx, out=cfg.run_dir / "bench_shipped")
        stats = {"shipped": selection_stats(shipped, ctx.sources)}
        tasks = [proxy_task(ctx, "shipped", "shipped", {}, shipped, ctx.seed)]
        baselines = {}
        for run_id in ("equal", single):
            weights = json.loads(RunsTable(sweep_ctx.out / "runs.parquet", sweep_ctx.key)
                                 .ok_rows()[run_id]["weights"]) if run_id else None
            if weights:
                baselines[run_id] = weights
                sel = ctx.engine.select(weights, cut)
                tasks.append(proxy_task(ctx, run_id, "baseline", weights, sel, ctx.seed))
        random_ids = []
        for i in range(args.draws):
            sel = ctx.engine.select(None, cut, random_seed=10_000 + i)
            random_ids.append(f"random-{i}")
            stats[random_ids[-1]] = selection_stats(sel, ctx.sources)
            tasks.append(proxy_task(ctx, random_ids[-1], "random", {}, sel, ctx.seed))
        before = None
        if args.before:
            weights = _before_weights(sweep_ctx, names, directions, args.before_family)
            plain = dataclasses.replace(sweep_ctx.cut, length_neutral=False)
            before = sweep_ctx.engine.select(weights, plain)
            before_task = proxy_task(sweep_ctx, "before-" + args.before_family, "before",
                                     weights, before, ctx.seed)
            before_task = dataclasses.replace(before_task, work_dir=str(ctx.out / "work"))
            tasks.append(before_task)
        table = RunsTable(ctx.out / "runs.parquet", ctx.key)
        rows = run_sweep(tasks, table, workers=args.workers, console=console, label="proxies")
    values = {k: run_values(mcfg.targets, r) for k, r in rows.items()}
    failed = sorted(k for k, v in values.items() if v is None)
    if failed:
        console.print(f"[red]failed runs: {failed}")
        return 1
    judged = ["shipped", *baselines]
    gaps = _gaps(values, random_ids, mcfg, judged, ctx.seed)
    labels = {"shipped": f"shipped ({summary['shipped']['method']})",
              **{b: b for b in baselines}}
    console.print(_table(f"shipped selection vs {args.draws} random selections at its tokens "
                         "per domain: gap in random std [90% bootstrap] per family (report "
                         "half; negative = better)", gaps, labels))
    lengths = length_diagnostics(stats, "shipped", random_ids)
    console.print("shipped documents per domain vs random: " + ", ".join(
        f"{d} {e['learned_docs']:,} vs {e['random_docs']:,.0f} ({e['docs_ratio']:.2f}x)"
        for d, e in lengths["per_domain"].items()))
    console.print(f"shipped: {shipped.kept.num_rows:,} docs, {sum(budgets.values()):,} tokens")
    if before is not None:
        sweep_rows = RunsTable(sweep_ctx.out / "runs.parquet", sweep_ctx.key).ok_rows()
        sweep_random = sorted(r for r in sweep_rows if r.startswith("random-"))
        both = {**{r: run_values(mcfg.targets, sweep_rows[r]) for r in sweep_random},
                "before": values["before-" + args.before_family]}
        before_gaps = _gaps(both, sweep_random, mcfg, ["before"], ctx.seed)
        console.print(_table(f"before: weights fitted on {args.before_family} alone, plain "
                             f"first-fit, vs the Meta-rater sweep's {len(sweep_random)} random "
                             "selections", before_gaps, {"before": "before"}))
        docs = {str(d): int(n) for d, n in zip(*np.unique(before.kept.column("domain")
                                                           .to_numpy(zero_copy_only=False),
                                                           return_counts=True), strict=True)}
        console.print(f"before: documents per domain {docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
