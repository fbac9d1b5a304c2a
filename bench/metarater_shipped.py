"""Does the selection `metamix select` ships train a better model than random selection?

Trains fresh proxies on the documents in ``out/<run>/selected/`` and on ``--draws`` random
selections holding the same tokens per domain (drawn through the same first-fit cut), and
compares them on the report half of the run's Meta-rater targets. Needs `make demo` (or
score + select) first.

    .venv/bin/python bench/metarater_shipped.py --config configs/demo.yaml [--draws 5]

Prints the shipped selection's objective, the random mean ± std and the gap in std
(negative = shipped is better). Runs are kept in ``<run>/bench_shipped/runs.parquet``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from metamix.config import load_config
from metamix.mixtures.metarater.config import MetaraterConfig
from metamix.mixtures.metarater.run import open_context, proxy_task
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/demo.yaml")
    ap.add_argument("--draws", type=int, default=5, help="random selections (>= 5)")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    console = Console()
    cfg = load_config(args.config)
    mcfg = cfg.metarater or MetaraterConfig()
    shipped = shipped_selection(cfg.run_dir / "selected")
    budgets = shipped.tokens_per_domain()
    cut = Cut(mode="token_budget", budgets=tuple(sorted(budgets.items())))
    with open_context(cfg, mcfg, console) as (ctx, _, _):
        ctx.out = cfg.run_dir / "bench_shipped"
        tasks = [proxy_task(ctx, "shipped", "shipped", {}, shipped, ctx.seed)]
        for i in range(args.draws):
            random = ctx.engine.select(None, cut, random_seed=10_000 + i)
            tasks.append(proxy_task(ctx, f"random-{i}", "random", {}, random, ctx.seed))
            drift = {d: random.tokens_per_domain().get(d, 0) - n for d, n in budgets.items()}
            console.print(f"random-{i}: tokens per domain vs shipped {drift}")
        table = RunsTable(ctx.out / "runs.parquet", ctx.key)
        rows = run_sweep(tasks, table, workers=args.workers, console=console, label="proxies")
    values = {k: run_values(mcfg.targets, r) for k, r in rows.items()}
    failed = sorted(k for k, v in values.items() if v is None)
    if failed:
        console.print(f"[red]failed runs: {failed}")
        return 1
    mine = values["shipped"]["report"]
    randoms = [values[f"random-{i}"]["report"] for i in range(args.draws)]
    out = Table(title=f"shipped selection vs {args.draws} random selections, same tokens per "
                "domain (report half; lower is better)")
    for col in ("target", "shipped", "random mean ± std", "gap (std)"):
        out.add_column(col, justify="left" if col == "target" else "right")
    for name in [t.name for t in mcfg.targets] + ["objective"]:
        r = np.array([v[name] for v in randoms])
        gap = (mine[name] - r.mean()) / r.std(ddof=1)
        out.add_row(name, f"{mine[name]:.4f}", f"{r.mean():.4f} ± {r.std(ddof=1):.4f}",
                    f"{gap:+.1f}")
    console.print(out)
    console.print(f"shipped: {shipped.kept.num_rows:,} docs, {sum(budgets.values()):,} tokens; "
                  f"tokens per domain {budgets}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
