"""`metamix` command line: score, select, run (score + select).

User-caused errors print one line naming the file/key and exit 2; a bug keeps its
traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import yaml
from rich.console import Console

from pipeline.atomic import write_json_atomic
from pipeline.config import RunConfig, load_config
from pipeline.errors import UserError
from pipeline.report import print_reports


def parse_override(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise UserError(f"--set {text!r}: expected KEY=VALUE (e.g. workers=2)")
    key, value = text.split("=", 1)
    return key.strip(), yaml.safe_load(value)


def _load(args: argparse.Namespace) -> RunConfig:
    overrides = dict(parse_override(s) for s in args.set)
    cfg = load_config(args.config, overrides)
    from pipeline.scorer_specs import build_scorers

    build_scorers(cfg.score.scorers)  # fail on bad scorer params before reading data
    return cfg


def cmd_score(args: argparse.Namespace, console: Console) -> None:
    from pipeline.runner import run_score

    cfg = _load(args)
    started = time.monotonic()
    reports = run_score(cfg, console)
    print_reports(console, reports, f"metamix score · run {cfg.run} · "
                  f"{time.monotonic() - started:.1f}s · {cfg.n_workers} workers")
    write_json_atomic(cfg.run_dir / "score_summary.json",
                      {"stages": [r.to_json() for r in reports]})
    console.print(f"scored shards: {cfg.run_dir / 'scored'}")


def cmd_select(args: argparse.Namespace, console: Console) -> None:
    from pipeline.runner import scored_paths
    from pipeline.selection import SelectionError, run_selection

    cfg = _load(args)
    if cfg.select is None:
        raise UserError(f"{args.config}: select: section missing (weights, mode, ...)")
    try:
        run_selection(cfg.select, scored_paths(cfg), cfg.run_dir, progress=cfg.progress,
                      console=console)
    except SelectionError as exc:
        raise UserError(f"{args.config}: {exc}") from None
    console.print(f"selected shards: {cfg.run_dir / 'selected'}")


def cmd_annotate(args: argparse.Namespace, console: Console) -> None:
    from scorers.prrc.annotate import AnnotateConfig, run_annotate

    cfg = _load(args)
    run_annotate(cfg, cfg.annotate or AnnotateConfig(), console)
    console.print(f"annotations: {cfg.run_dir / 'annotate' / 'annotations.parquet'}")


def cmd_train_rater(args: argparse.Namespace, console: Console) -> None:
    from scorers.prrc.train_rater import TrainRaterConfig, train_raters

    cfg = _load(args)
    train_raters(cfg.train_rater or TrainRaterConfig(), console)


def cmd_metarater(args: argparse.Namespace, console: Console) -> None:
    from mixtures.metarater import run_metarater
    from mixtures.metarater_config import MetaraterConfig

    cfg = _load(args)
    run_metarater(cfg, cfg.metarater or MetaraterConfig(), console)
    console.print(f"learned weights: {cfg.run_dir / 'metarater' / 'weights.json'}")


def cmd_run(args: argparse.Namespace, console: Console) -> None:
    cmd_score(args, console)
    cmd_select(args, console)


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace, Console], None], str]] = {
    "score": (cmd_score, "ingest the input and write quality signals (out/<run>/scored)"),
    "select": (cmd_select, "select documents from the scored shards (out/<run>/selected)"),
    "run": (cmd_run, "score, then select"),
    "metarater": (cmd_metarater, "learn score weights from proxy-model losses "
                  "(out/<run>/metarater/weights.json)"),
    "annotate": (cmd_annotate, "rate a stratified sample with an LLM on the PRRC rubrics "
                 "(out/<run>/annotate)"),
    "train-rater": (cmd_train_rater, "train PRRC raters on the seed labels and evaluate them "
                    "(scorers/prrc/models)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="metamix", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--config", "-c", default="configs/demo.yaml", help="YAML run config")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config key, e.g. --set workers=1 (repeatable)")
    from mixtures.mix.cli import add_mix_parser

    add_mix_parser(sub)  # `metamix mix fit|suggest|optimize` work on any runs table
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(stderr=True, highlight=False)
    if not console.is_terminal:
        console.width = 132  # logs and CI: don't squeeze the summary tables into 80 columns
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
    try:
        if args.command == "mix":
            from mixtures.mix.cli import cmd_mix

            cmd_mix(args, console)
        else:
            COMMANDS[args.command][0](args, console)
    except UserError as exc:
        console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        console.print("interrupted; rerun the same command to resume")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

