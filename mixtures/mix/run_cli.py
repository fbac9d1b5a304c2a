"""``metamix mix run --config C``: the whole mixture search of ``run_mix`` from a run config
(its ``mix:`` section, or the defaults)."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console


def add_run_parser(mix_subparsers: Any) -> argparse.ArgumentParser:
    p = mix_subparsers.add_parser("run", help="proxy runs, surrogates and search on the scored "
                                  "corpus; writes out/<run>/mixture/weights.json")
    p.add_argument("--config", "-c", default="configs/demo.yaml",
                   help="run config (YAML) with an optional mix: section")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set mix.n_runs=16 (repeatable)")
    return p


def cmd_mix_run(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from mixtures.mix.config import MixConfig
    from mixtures.mix.pipeline import run_mix
    from pipeline.cli import parse_override
    from pipeline.config import load_config

    overrides = dict(parse_override(item) for item in args.set)
    cfg = load_config(args.config, overrides)
    summary = run_mix(cfg, cfg.mix or MixConfig(), console)
    console.print(f"mixture: {cfg.run_dir / 'mixture' / 'weights.json'}")
    return summary
