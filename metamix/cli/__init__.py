"""``metamix``: the command line that composes the layers below it.

User-caused errors print one line naming the file/key and exit 2, as does an object store
that stops answering (naming the URL; a rerun resumes); a bug keeps its traceback. Heavy
libraries load inside the command that needs them, so ``--help`` is quick.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from metamix.base import interrupt
from metamix.base.errors import UserError

EXAMPLES: dict[str, str] = {
    "score": "metamix score -c configs/demo.yaml --set workers=2",
    "select": "metamix select -c configs/demo.yaml --set select.fraction=0.3",
    "run": "metamix run -c configs/demo.yaml              # score, metarater, mix, select\n"
           "  metamix run -c configs/demo.yaml --until mix  # score, then mix",
    "metarater": "metamix metarater -c configs/demo.yaml --set metarater.k=64",
    "annotate": "OPENAI_API_KEY=... metamix annotate -c configs/demo.yaml "
                "--set annotate.sample=200",
    "train-rater": "metamix train-rater -c configs/demo.yaml",
    "scorers": "metamix scorers",
    "mix run": "metamix mix run -c configs/demo.yaml --set mix.n_runs=16",
    "mix fit": "metamix mix fit --runs runs.csv --target loss_pile_cc",
    "mix suggest": "metamix mix suggest --runs runs.csv --n 4 --out next.csv",
    "mix optimize": "metamix mix optimize --runs runs.csv --caps caps.json --out mixture.json",
    "report": "metamix report -c configs/demo.yaml   # writes out/demo/report/index.html",
    "export": "metamix export -c configs/demo.yaml --format megatron  # out/demo/export/megatron",
    "inspect": "metamix inspect -c configs/demo.yaml --reason not_selected --reason "
               "duplicate_near --n 2\n"
               "  metamix inspect -c configs/demo.yaml --score prrc_professionalism --kept",
}


def parse_override(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise UserError(f"--set {text!r}: expected KEY=VALUE (e.g. workers=2)")
    key, value = text.split("=", 1)
    return key.strip(), yaml.safe_load(value)


def load_run_config(args: argparse.Namespace, check_scorers: bool = True) -> Any:
    """The run config with ``--set`` overrides, scorer parameters checked before any data
    (not for ``select``, which reads scored shards only: importing every scorer costs it
    more than the selection itself)."""
    from metamix.config import load_config

    cfg = load_config(args.config, dict(parse_override(s) for s in args.set))
    if check_scorers:
        from metamix.pipeline.scorer_specs import build_scorers

        # fail on bad scorer params before reading data
        build_scorers(cfg.score.scorers, base_dir=Path(cfg.base_dir))
    return cfg


#: Steps that write nothing into the run folder, so they need no lock.
_UNLOCKED = ("train-rater",)


@contextmanager
def _owning(cfg: Any, *more_roots: Path) -> Iterator[None]:
    """Hold the run folder's lock, after removing what killed earlier runs left behind;
    every file written meanwhile goes inside the run folder, the shared ``_cache`` or
    ``more_roots`` (``export --out``), or is refused."""
    from metamix.base.atomic import confined_to
    from metamix.base.runlock import remove_stale_temps, run_lock

    cache = cfg.resolve(cfg.out_dir) / "_cache"
    with run_lock(cfg.run_dir), confined_to(cfg.run_dir, cache, *more_roots):
        remove_stale_temps(cfg.run_dir, only_dead=False)
        remove_stale_temps(cache)
        yield


def _run_steps(steps: Sequence[str], cfg: Any, console: Console, config_path: str) -> None:
    """Run each step; a finished step stamps itself so `metamix run` can skip it later."""
    from metamix.cli import commands
    from metamix.cli.chain import mark_complete

    for name in steps:
        if name == "select":
            commands.select(cfg, console, config_path)
        else:
            getattr(commands, name.replace("-", "_"))(cfg, console)
        mark_complete(cfg, name)


def _step(name: str) -> Callable[[argparse.Namespace, Console], None]:
    def run(args: argparse.Namespace, console: Console) -> None:
        cfg = load_run_config(args, check_scorers=name != "select")
        if name in _UNLOCKED:
            _run_steps([name], cfg, console, args.config)
            return
        with _owning(cfg):
            _run_steps([name], cfg, console, args.config)
    return run


def cmd_run(args: argparse.Namespace, console: Console) -> None:
    from metamix.cli.chain import is_complete, plan

    cfg = load_run_config(args)
    steps = plan(cfg, args.until)
    console.print(f"metamix run: {' → '.join(steps)}")
    with _owning(cfg):
        for step in steps:
            if is_complete(cfg, step):
                console.print(f"{step}: complete (same config and inputs, outputs unchanged);"
                              " skipped")
                continue
            _run_steps([step], cfg, console, args.config)


def cmd_scorers(args: argparse.Namespace, console: Console) -> None:
    from metamix.cli.scorers_list import print_scorers

    print_scorers(Console(highlight=False))  # a listing: stdout, so it pipes and greps


def cmd_report(args: argparse.Namespace, console: Console) -> None:
    """One page of figures over a run's outputs (``metamix.report``)."""
    from metamix.base.storage import require_local
    from metamix.config import load_config
    from metamix.report import cli as report_cli

    cfg = load_config(args.config, dict(parse_override(s) for s in args.set))
    require_local(cfg.run_dir, "report")
    with _owning(cfg):
        report_cli.run(cfg, args, console)


def cmd_export(args: argparse.Namespace, console: Console) -> None:
    """The selection as training data: sharded JSONL/Parquet or Megatron indexed datasets."""
    from pathlib import Path

    from metamix.pipeline.export import run_export

    cfg = load_run_config(args, check_scorers=False)
    out = Path(args.out) if args.out else None
    with _owning(cfg, *([out] if out is not None else [])):
        run_export(cfg, console, args.format, out,
                   shard_docs=args.shard_docs, columns=args.columns.split(",") if
                   args.columns else None, eod_token=args.eod_token)


def cmd_inspect(args: argparse.Namespace, console: Console) -> None:
    """Sampled excerpts of kept and dropped documents (``metamix.pipeline.selection.inspect``);
    read-only, so it takes no run lock and works beside a running step."""
    from metamix.pipeline.selection.inspect import inspect_selection, print_groups

    if args.n < 1:
        raise UserError(f"--n {args.n}: give at least 1 document per group")
    cfg = load_run_config(args, check_scorers=False)
    groups, warnings = inspect_selection(
        cfg, n=args.n, seed=args.seed, score=args.score, by_domain=args.domain is not None,
        domain=args.domain or None, reasons=tuple(args.reason),
        kept=True if args.kept else False if args.dropped else None)
    for warning in warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}", soft_wrap=True)
    out = Console(highlight=False)  # samples: stdout, so they pipe and grep
    if not out.is_terminal:
        out.width = 132
    print_groups(out, groups, args.score)


def _add_inspect_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, default=3, help="documents per group (default 3)")
    p.add_argument("--seed", type=int, default=None,
                   help="sampling seed (default: the run's seed); same seed, same documents")
    p.add_argument("--score", default=None, metavar="COLUMN",
                   help="group by decile of this score column (or combined_score)")
    p.add_argument("--domain", nargs="?", const="", default=None, metavar="NAME",
                   help="group by domain; with a NAME, only that domain")
    p.add_argument("--reason", action="append", default=[], metavar="REASON",
                   help="only this outcome: kept, not_selected, duplicate_near, where, or a "
                        "filter (gopher_repetition matches gopher_repetition:...); repeatable")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--kept", action="store_true", help="only kept documents")
    which.add_argument("--dropped", action="store_true", help="only dropped documents")


def _add_export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", required=True, choices=("jsonl", "parquet", "megatron"))
    p.add_argument("--out", default=None, help="folder (default: out/<run>/export/<format>)")
    p.add_argument("--shard-docs", type=int, default=10_000,
                   help="documents per jsonl/parquet shard (default 10000)")
    p.add_argument("--columns", default=None,
                   help="comma-separated columns for jsonl/parquet (default id,text,domain,"
                        "source)")
    p.add_argument("--eod-token", default=None,
                   help="megatron: append this token (e.g. '<|endoftext|>') to every "
                        "document; it must be in the run's tokenizer")


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace, Console], None], str]] = {
    "score": (_step("score"), "ingest the input and write quality signals (out/<run>/scored)"),
    "select": (_step("select"), "select documents from the scored shards (out/<run>/selected)"),
    "run": (cmd_run, "run the chain up to a step: score, then metarater and mix when the "
            "select section reads their outputs, then select"),
    "metarater": (_step("metarater"), "learn score weights from proxy-model losses "
                  "(out/<run>/metarater/weights.json)"),
    "annotate": (_step("annotate"), "rate a stratified sample with an LLM on the PRRC rubrics "
                 "(out/<run>/annotate)"),
    "train-rater": (_step("train-rater"), "train PRRC raters on the seed labels and evaluate "
                    "them (scorers/prrc/models)"),
    "scorers": (cmd_scorers, "list every registered scorer: output columns, directions, "
                "parameters"),
    "report": (cmd_report, "one self-contained HTML page of figures over the run's outputs, "
               "a PNG per figure (out/<run>/report/index.html)"),
    "export": (cmd_export, "write the selection for training, shuffled by the seed: sharded "
               "jsonl/parquet, or Megatron-LM .bin/.idx per domain with megatron_data_path.txt"),
    "inspect": (cmd_inspect, "sampled kept and dropped documents as excerpts: per drop "
                "reason, per score decile (--score), per domain (--domain)"),
}


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", default="configs/demo.yaml", help="YAML run config")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set workers=1 (repeatable)")


def _example(key: str) -> str:
    return f"example:\n  {EXAMPLES[key]}"


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The full parser; given the command line ``argv``, only what that command needs."""
    from metamix import __version__
    from metamix.cli.chain import STEPS
    from metamix.cli.mix_entry import add_mix_commands

    parser = argparse.ArgumentParser(
        prog="metamix", description="Data curation for LLM pretraining: quality scores, "
        "Meta-rater weighting, domain mixtures.", epilog="`metamix <command> --help` shows "
        "an example of each command.")
    parser.add_argument("--version", action="version", version=f"metamix {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    fmt = argparse.RawDescriptionHelpFormatter
    for name, (_, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text,
                           epilog=_example(name), formatter_class=fmt)
        if name != "scorers":
            _add_config_args(p)
        if name == "run":
            p.add_argument("--until", choices=STEPS, default="select",
                           help="last step to run (default: select)")
        if name == "report":
            from metamix.report.cli import add_arguments

            add_arguments(p)
        if name == "export":
            _add_export_args(p)
        if name == "inspect":
            _add_inspect_args(p)
    add_mix_commands(sub, argv, _example, _add_config_args)  # torch only for `mix`
    return parser


#: File-system errors a user causes (a full disk, a path that cannot be created or written).
_USER_OS_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS,
                   errno.ENOTDIR, errno.EISDIR, errno.ENOENT, errno.ENAMETOOLONG, errno.EEXIST}


def _os_error_message(exc: OSError) -> str | None:
    """One line naming the path for a file-system error the user can fix, else None (a bug
    keeps its traceback). Arrow reports a full disk without an errno, so its text counts."""
    if exc.errno in _USER_OS_ERRORS:
        where = f"{exc.filename}: " if exc.filename else ""
        hint = "; free some space and rerun to resume" if exc.errno in (
            errno.ENOSPC, errno.EDQUOT) else ""
        return f"{where}{exc.strerror or exc}{hint}"
    if "No space left on device" in str(exc):
        return f"{str(exc).splitlines()[0]}; free some space and rerun to resume"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    console = Console(stderr=True, highlight=False)
    if not console.is_terminal:
        console.width = 132  # logs and CI: don't squeeze the summary tables into 80 columns
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
    # OpenBLAS (numpy's, scipy's) starts cores - 1 threads when it loads and each one
    # busy-waits 2^28 cycles (~0.1 s) for work before it sleeps, and again after every
    # call: CPU burnt by every process of every command, workers included (they inherit
    # this environment). 2^20 cycles (~0.4 ms) still keeps them awake between the
    # back-to-back calls of a BLAS-heavy loop. A value the user set wins.
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "20")
    # After Ctrl-C the workers exit at once, and multiprocessing's resource tracker (it
    # starts with this process's -W options) unlinks the semaphores they held, warning
    # "leaked semaphore objects": noise after the one message, and nothing is left behind.
    sys.warnoptions.append("ignore:resource_tracker:UserWarning")
    with interrupt.handled():
        try:
            try:
                _dispatch(args, console)
            except BaseException as exc:
                return _report(exc, console)
        except KeyboardInterrupt:   # Ctrl-C came while another error was being reported
            interrupt.quiet()
            console.print(interrupt.MESSAGE)
            return 130
    return 0


def _dispatch(args: argparse.Namespace, console: Console) -> None:
    if args.command == "mix" and args.mix_command == "run":
        _step("mix")(args, console)
    elif args.command == "mix":
        from metamix.mixtures.mix.cli import cmd_mix

        cmd_mix(args, console)
    else:
        COMMANDS[args.command][0](args, console)


def _report(exc: BaseException, console: Console) -> int:
    """The exit status for an error out of a command, after printing its one line; a bug
    (no user cause, no Ctrl-C) is raised again and keeps its traceback."""
    from metamix.base.storage import unreachable_store_message

    if interrupt.caused_by_interrupt(exc):
        # whatever the interrupt broke first (a DuckDB query, the worker pool) is the
        # interrupt: one message, and a late KeyboardInterrupt cannot add a traceback
        interrupt.quiet()
        console.print(interrupt.MESSAGE)
        return 130
    if isinstance(exc, UserError):
        # a step that wraps a read error (select's "reading scored shards: ...") would
        # print DuckDB's flattened traceback when the cause is the store going away
        console.print(f"[bold red]error:[/] {unreachable_store_message(exc) or exc}",
                      soft_wrap=True)
        return 2
    if not isinstance(exc, Exception):
        raise exc
    # a file-system error the user can fix, or the object store gone away: from any layer
    # (a worker's read, an upload, DuckDB's scan), so recognised here once rather than at
    # each call site; anything else is a bug and keeps its traceback
    message = (_os_error_message(exc) if isinstance(exc, OSError) else None) \
        or unreachable_store_message(exc)
    if message is None:
        raise exc
    console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    return 2
