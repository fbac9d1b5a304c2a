"""How far apart the target families pull: read a finished Meta-rater run and print, per
family, the held-out gaps of the learned weights, equal weights and the best single score;
the correlation of the families' values across the Dirichlet runs; and, for every family,
the best gap any run of the sweep reached (what a weighting of these scores can reach at
best on it).

    .venv/bin/python bench/metarater_families.py --config configs/demo.yaml

Needs `make metarater` first; trains nothing.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
from rich.console import Console
from rich.table import Table

from metamix.config import load_config


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/demo.yaml")
    args = ap.parse_args()
    cfg = load_config(args.config)
    path = cfg.run_dir / "metarater" / "summary.json"
    if not path.is_file():
        raise SystemExit(f"{path}: not found; run `make metarater` first")
    summary = json.loads(path.read_text())
    runs, families = summary["runs"], list(summary["families"])
    random_ids = [k for k, v in runs.items() if v["kind"] == "random"]
    r = np.array([[runs[i]["families"][f] for f in families] for i in random_ids])
    mean, sd = r.mean(axis=0), r.std(axis=0, ddof=1)
    console = Console()
    table = Table(title=f"gap to random ({len(random_ids)} draws) in noise std per family, "
                  "report half; learned = fitted without the family")
    for col in ("family", "learned", "equal", "best single", "best run of the sweep"):
        table.add_column(col, justify="left" if col == "family" else "right")
    pool = [k for k, v in runs.items() if v["kind"] in ("dirichlet", "single", "equal")
            and v["families"]]
    gaps = {k: (np.array([runs[k]["families"][f] for f in families]) - mean) / sd for k in pool}
    for j, f in enumerate(families):
        entry = summary["families"][f]
        best = min(pool, key=lambda k: gaps[k][j])
        table.add_row(f, *(f"{(entry[m] or {}).get('gap_std', float('nan')):+.1f}"
                           for m in ("learned", "equal", "single")),
                      f"{gaps[best][j]:+.1f} ({best})")
    means = summary["held_out"]["mean_gap_std"]
    table.add_row("mean", *(f"{means[m]:+.1f}" if means.get(m) is not None else "-"
                            for m in ("learned", "equal", "single")), "")
    console.print(table)
    dirichlet = [k for k in pool if runs[k]["kind"] == "dirichlet"]
    corr = np.corrcoef(np.array([gaps[k] for k in dirichlet]).T)
    ctable = Table(title=f"correlation of the families' values across {len(dirichlet)} "
                   "Dirichlet runs")
    ctable.add_column("family")
    for f in families:
        ctable.add_column(f[:8], justify="right")
    for i, f in enumerate(families):
        ctable.add_row(f, *(f"{corr[i, j]:+.2f}" for j in range(len(families))))
    console.print(ctable)
    worst = {k: float(gaps[k].max()) for k in pool}
    best = min(worst, key=worst.get)
    console.print(f"closest to beating random on every family: {best}, worst family "
                  f"{worst[best]:+.1f} std; runs 2 std better on all families: "
                  f"{sum(v <= -2 for v in worst.values())} of {len(pool)}; shipped: "
                  f"{summary['shipped']['method']} ({summary['shipped']['run_id']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
