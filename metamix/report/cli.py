"""``metamix report``'s arguments and its glue to the run config (metamix/cli wires it)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from rich.console import Console

if TYPE_CHECKING:
    from metamix.config import RunConfig
    from metamix.report.context import ReportOptions

DEFAULT_SAMPLE_ROWS = 50_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sample-rows", type=int, default=DEFAULT_SAMPLE_ROWS, metavar="N",
                        help="scored rows behind the distributions and correlations (default "
                        f"{DEFAULT_SAMPLE_ROWS:,}; a deterministic sample when the corpus is "
                        "larger)")
    parser.add_argument("--no-png", action="store_true",
                        help="write only index.html, no PNG per figure")


def options_for(cfg: RunConfig, args: argparse.Namespace) -> ReportOptions:
    """Seeds and folds from the run config, so refitted out-of-fold predictions are the
    ones the Meta-rater and mix steps scored."""
    from metamix.base.errors import UserError
    from metamix.report.context import ReportOptions

    if args.sample_rows < 1:
        raise UserError(f"--sample-rows {args.sample_rows}: must be at least 1")
    mix = cfg.mix
    return ReportOptions(
        seed=cfg.seed, sample_rows=args.sample_rows, png=not args.no_png,
        mix_seed=mix.seed if mix is not None and mix.seed is not None else cfg.seed,
        mix_folds=mix.folds if mix is not None else 5,
        cache_dir=cfg.resolve(cfg.out_dir) / "_cache")


def run(cfg: RunConfig, args: argparse.Namespace, console: Console) -> None:
    from metamix.report.build import build_report, print_summary

    result = build_report(cfg.run_dir, options=options_for(cfg, args), console=console)
    print_summary(result, console)
    console.file.flush()
    print(result.path, flush=True)  # stdout, last: the one line a script (or make demo) wants
