"""How the PRRC raters transfer to kinds of text they were not trained on.

Runs the grouped cross-validation of ``train-rater`` (each fold holds out whole kinds, or
whole source packages with ``--group-by source``) for the chosen rater kinds, writes no model,
and prints per dimension: held-out Spearman, within-kind Spearman, kind-order Spearman and
inversions, with the difference to the fastText baseline.

    .venv/bin/python bench/raters_transfer.py                       # seed v2 if merged, else v1
    .venv/bin/python bench/raters_transfer.py --group-by source --scheme group_k_fold
    .venv/bin/python bench/raters_transfer.py --kinds fasttext static --head '{"blends": [1.0]}'
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
from rich.console import Console
from rich.table import Table

from metamix.scorers.prrc.raters_common import DIMENSIONS, KINDS
from metamix.scorers.prrc.raters_head import HeadParams
from metamix.scorers.prrc.raters_transfer import TransferCV, kind_folds, transfer_metrics
from metamix.scorers.prrc.train_rater import (
    TRANSFER_GOAL,
    TrainRaterConfig,
    build_trainers,
    held_out_kind_predictions,
)
from metamix.scorers.prrc.train_rater_data import default_labels, load_labelled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", default=None)
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--dims", nargs="+", default=list(DIMENSIONS), choices=DIMENSIONS)
    parser.add_argument("--group-by", choices=("kind", "source"), default="kind")
    parser.add_argument("--scheme", choices=("leave_one_kind_out", "group_k_fold"),
                        default="leave_one_kind_out")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--head", default="{}", help="HeadParams overrides as JSON")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    console = Console(width=140)
    cfg = TrainRaterConfig(labels=args.labels or default_labels(), kinds=tuple(args.kinds),
                           dimensions=tuple(args.dims),
                           cv=TransferCV(group_by=args.group_by, scheme=args.scheme,
                                         folds=args.folds),
                           head=HeadParams(**json.loads(args.head)))
    data = load_labelled(cfg.labels, cfg.excerpts, cfg.dimensions)
    groups = data.groups(cfg.cv.group_by)
    folds = kind_folds(groups, cfg.cv.scheme, cfg.cv.folds)
    trainers, _ = build_trainers(cfg, data, console)
    table = Table(title=f"{cfg.labels}: {len(data)} labels, {len(set(groups.tolist()))} "
                        f"{cfg.cv.group_by}s, {cfg.cv.scheme} ({len(folds)} folds)")
    for col in ("dimension", "rater", "held-out ρ", "vs fastText", "within-kind ρ mean/min",
                "kind-order ρ", "inversions", "seconds"):
        table.add_column(col, justify="left" if col in ("dimension", "rater") else "right")
    for dim in cfg.dimensions:
        y = data.labels[dim].astype(np.float64)
        baseline = None
        for kind, trainer in trainers.items():
            start = time.perf_counter()
            oof = held_out_kind_predictions(trainer, y, folds, workers=args.workers)
            m = transfer_metrics(oof, data.labels[dim], groups, cfg.cv.inversion_margin)
            if kind == "fasttext":
                baseline = m["spearman"]
            delta = "" if baseline is None or kind == "fasttext" else \
                f"{m['spearman'] - baseline:+.3f}"
            table.add_row(dim, kind, f"{m['spearman']:.3f}", delta,
                          f"{m['within_kind_spearman_mean']:.2f}/"
                          f"{m['within_kind_spearman_min']:.2f}",
                          f"{m['kind_order_spearman']:.2f}", str(m["n_inversions"]),
                          f"{time.perf_counter() - start:.0f}")
    table.caption = f"goal: held-out ρ ≥ {TRANSFER_GOAL} with 0 inversions"
    console.print(table)


if __name__ == "__main__":
    main()
