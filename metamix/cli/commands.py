"""One function per pipeline step, each taking a loaded run config.

The steps are the units ``metamix run --until`` chains; each resumes from what its earlier
runs left, so running a finished step again costs little.
"""

from __future__ import annotations

import time

from rich.console import Console

from metamix.base.atomic import write_json_atomic
from metamix.base.errors import UserError
from metamix.config import RunConfig


def score(cfg: RunConfig, console: Console) -> None:
    from metamix.pipeline.report import print_reports
    from metamix.pipeline.runner import run_score

    started = time.monotonic()
    reports = run_score(cfg, console)
    where = (f"ray {cfg.ray.address}" if cfg.executor == "ray"
             else f"{cfg.n_workers} workers")
    print_reports(console, reports, f"metamix score · run {cfg.run} · "
                  f"{time.monotonic() - started:.1f}s · {where}")
    write_json_atomic(cfg.run_dir / "score_summary.json",
                      {"stages": [r.to_json() for r in reports]})
    write_json_atomic(cfg.run_dir / "logs" / "score.json",
                      {"stages": [r.timing_json() for r in reports],
                       "seconds": round(time.monotonic() - started, 3)})
    console.print(f"scored shards: {cfg.run_dir / 'scored'}")


def select(cfg: RunConfig, console: Console, config_path: str) -> None:
    from metamix.pipeline.runner import scored_paths
    from metamix.pipeline.selection import SelectionError, run_selection

    if cfg.select is None:
        raise UserError(f"{config_path}: select: section missing (weights, mode, ...)")
    try:
        summary = run_selection(cfg.select, scored_paths(cfg), cfg.run_dir,
                                progress=cfg.progress, console=console)
    except SelectionError as exc:
        raise UserError(f"{config_path}: {exc}") from None
    _refresh_mixture_files(cfg, summary)
    console.print(f"selected shards: {cfg.run_dir / 'selected'}")


def _refresh_mixture_files(cfg: RunConfig, summary: dict) -> None:
    """``mixture/megatron_data_path.txt`` and ``interleave_datasets.py`` carry the shares
    this selection shipped (``metamix.mixtures.mix.report.refresh_after_select``)."""
    if (cfg.run_dir / "mixture" / "weights.json").is_file():
        from metamix.mixtures.mix.config import MixConfig
        from metamix.mixtures.mix.report import refresh_after_select

        refresh_after_select(cfg, (cfg.mix or MixConfig()).megatron_prefix, summary)


def metarater(cfg: RunConfig, console: Console) -> None:
    from metamix.mixtures.metarater.config import MetaraterConfig
    from metamix.mixtures.metarater.run import run_metarater

    run_metarater(cfg, cfg.metarater or MetaraterConfig(), console)
    console.print(f"learned weights: {cfg.run_dir / 'metarater' / 'weights.json'}")


def mix(cfg: RunConfig, console: Console) -> None:
    from metamix.mixtures.mix.config import MixConfig
    from metamix.mixtures.mix.pipeline import run_mix

    run_mix(cfg, cfg.mix or MixConfig(), console)
    console.print(f"mixture: {cfg.run_dir / 'mixture' / 'weights.json'}")


def annotate(cfg: RunConfig, console: Console) -> None:
    from metamix.scorers.prrc.annotate import AnnotateConfig, run_annotate

    run_annotate(cfg, cfg.annotate or AnnotateConfig(), console)
    console.print(f"annotations: {cfg.run_dir / 'annotate' / 'annotations.parquet'}")


def train_rater(cfg: RunConfig, console: Console) -> None:
    from metamix.scorers.prrc.train_rater import TrainRaterConfig, train_raters

    train_raters(cfg.train_rater or TrainRaterConfig(), console)
