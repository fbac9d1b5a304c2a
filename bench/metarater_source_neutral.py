"""Does a source-neutral cut make weightings generalize? Re-cuts named runs of a finished
Meta-rater sweep so that every domain keeps its candidates' share of tokens per source (and
per length band: ``select.source_neutral``), trains a proxy on each, and prints every
family's gap to the sweep's own random draws (report half, noise std; negative = better)
beside the run's gap under the sweep's cut. A few random orders under the source-neutral
cut show that it alone moves nothing.

    .venv/bin/python bench/metarater_source_neutral.py --config configs/demo.yaml \\
        --run equal --run single-rps_doc_frac_chars_top_3gram [--random 4]

Runs are kept in ``<run>/bench_source_neutral/runs.parquet``. Needs `make metarater` first.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from rich.console import Console

from metamix.config import load_config
from metamix.mixtures.metarater.families import families_of, gaps_to_random
from metamix.mixtures.metarater.printing import print_gap_rows
from metamix.mixtures.metarater.run import open_context, proxy_task
from metamix.mixtures.metarater.summary import run_values
from metamix.mixtures.sweep import RunsTable, run_sweep

DEFAULT_RUNS = ["equal", "single-rps_doc_frac_chars_top_3gram"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/demo.yaml")
    ap.add_argument("--run", action="append", help="run id of the sweep (repeatable)")
    ap.add_argument("--random", type=int, default=4, help="random orders to re-cut")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    runs = args.run or DEFAULT_RUNS
    cfg = load_config(args.config)
    mcfg = cfg.metarater
    console = Console()
    with open_context(cfg, mcfg, console) as (ctx, _, _):
        rows = RunsTable(ctx.out / "runs.parquet", ctx.key).ok_rows()
        cut = dataclasses.replace(ctx.cut, source_neutral=True)
        tasks = [proxy_task(ctx, f"source-neutral:{r}", "recut", {},
                            ctx.engine.select(json.loads(rows[r]["weights"]), cut), ctx.seed)
                 for r in runs]
        tasks += [proxy_task(ctx, f"source-neutral:random-{i}", "recut", {},
                             ctx.engine.select(None, cut, random_seed=1000 + i), ctx.seed)
                  for i in range(args.random)]
        new = run_sweep(tasks, RunsTable(cfg.run_dir / "bench_source_neutral" / "runs.parquet",
                                         ctx.key),
                        workers=args.workers, console=console, label="re-cut")
    values = {k: run_values(mcfg.targets, r) for k, r in {**rows, **new}.items()}
    labels = [*runs, *(t.run_id for t in tasks)]
    gaps = gaps_to_random(values, mcfg.targets, sorted(k for k in rows if k.startswith(
        "random-")), labels)
    families = list(families_of(mcfg.targets))
    print_gap_rows(gaps, families, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
