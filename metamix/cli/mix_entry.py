"""The ``mix`` command group, built only when the command line asks for it.

``metamix.mixtures.mix.cli`` imports the surrogates (torch, BoTorch, SciPy: seconds of CPU
and hundreds of MB), which ``metamix --help``, ``score`` or ``select`` never use. Every
other command gets a placeholder ``mix`` entry with the same one-line help, so the command
list reads the same either way.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

#: Must equal the help ``add_mix_parser`` gives (tests/test_cli_start.py compares them).
MIX_HELP = "domain mixtures: fit surrogates, suggest runs, optimize weights from a runs table"


def wants_mix(argv: Sequence[str] | None) -> bool:
    """True when ``argv`` (None: build everything) runs a ``mix`` subcommand."""
    if argv is None:
        return True
    command = next((a for a in argv if not a.startswith("-")), None)
    return command == "mix"


def add_mix_commands(sub: Any, argv: Sequence[str] | None, example: Callable[[str], str],
                     add_config_args: Callable[[argparse.ArgumentParser], None]) -> None:
    if not wants_mix(argv):
        sub.add_parser("mix", help=MIX_HELP)
        return
    from metamix.mixtures.mix.cli import add_mix_parser

    fmt = argparse.RawDescriptionHelpFormatter
    mix_sub = add_mix_parser(sub)  # `metamix mix fit|suggest|optimize` work on any runs table
    for name, p in mix_sub.choices.items():
        p.epilog, p.formatter_class = example(f"mix {name}"), fmt
    run = mix_sub.add_parser("run", help="proxy runs, surrogates and search on the scored "
                             "corpus; writes out/<run>/mixture/weights.json",
                             epilog=example("mix run"), formatter_class=fmt)
    add_config_args(run)
