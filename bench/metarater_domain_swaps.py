"""Would weights per domain do better than one weight vector for all? Composes selections
from a finished Meta-rater sweep -- equal weights in every domain except the named ones,
which another run's weights (or random order) rank -- trains a proxy on each, and prints
every family's gap to the sweep's random draws (report half, noise std; negative =
better). The composites hold the sweep's tokens per domain exactly, since every domain is
cut on its own budget.

    .venv/bin/python bench/metarater_domain_swaps.py --config configs/demo.yaml \\
        --swap technical=single-rps_doc_frac_chars_top_3gram --swap technical=random

Each ``--swap`` is ``domain[,domain...]=run_id`` (``random`` for random order); runs are
kept in ``<run>/bench_domain_swaps/runs.parquet``. Needs `make metarater` first.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

import numpy as np
import pyarrow as pa
from rich.console import Console

from metamix.config import load_config
from metamix.mixtures.metarater.families import families_of, gaps_to_random
from metamix.mixtures.metarater.printing import print_gap_rows
from metamix.mixtures.metarater.run import open_context, proxy_task
from metamix.mixtures.metarater.summary import run_values
from metamix.mixtures.sweep import RunsTable, run_sweep
from metamix.pipeline.selection.engine import Selection

DEFAULT_SWAPS = ["technical=random", "technical=single-rps_doc_frac_chars_top_3gram",
                 "code,technical=single-rps_doc_frac_chars_top_3gram",
                 "web=single-rps_doc_frac_chars_top_3gram", "books=random"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/demo.yaml")
    ap.add_argument("--swap", action="append", help="domain[,domain...]=run_id|random")
    args = ap.parse_args()
    swaps = [(s.split("=")[0].split(","), s.split("=", 1)[1]) for s in args.swap or DEFAULT_SWAPS]
    cfg = load_config(args.config)
    mcfg = cfg.metarater
    console = Console()
    with open_context(cfg, mcfg, console) as (ctx, _, _):
        rows = RunsTable(ctx.out / "runs.parquet", ctx.key).ok_rows()
        cache: dict[str, Selection] = {}

        def selection(run: str) -> Selection:
            if run not in cache:
                cache[run] = (ctx.engine.select(None, ctx.cut, random_seed=987_654)
                              if run == "random" else
                              ctx.engine.select(json.loads(rows[run]["weights"]), ctx.cut))
            return cache[run]

        tasks, labels = [], []
        for domains, run in swaps:
            base = selection("equal").kept
            parts = [base.filter(pa.array(~np.isin(
                base.column("domain").to_numpy(zero_copy_only=False), domains)))]
            other = selection(run).kept
            parts.append(other.filter(pa.array(np.isin(
                other.column("domain").to_numpy(zero_copy_only=False), domains))))
            label = f"equal+{','.join(domains)}={run}"
            labels.append(label)
            tasks.append(proxy_task(ctx, label, "swap", {}, Selection(pa.concat_tables(parts),
                                                                       {}), ctx.seed))
        bench_ctx = dataclasses.replace(ctx, out=cfg.run_dir / "bench_domain_swaps")
        new = run_sweep(tasks, RunsTable(bench_ctx.out / "runs.parquet", ctx.key), workers=1,
                        console=console, label="composites")
    values = {k: run_values(mcfg.targets, r) for k, r in {**rows, **new}.items()}
    gaps = gaps_to_random(values, mcfg.targets, sorted(k for k in rows if k.startswith(
        "random-")), ["equal", *labels])
    families = list(families_of(mcfg.targets))
    print_gap_rows(gaps, families, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
