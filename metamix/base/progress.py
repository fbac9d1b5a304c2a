"""The two progress bars metamix shows: documents through a stage, and counted units
(proxy runs, requests, experts). One look for every long step, each with counts and ETA."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def make_progress(console: Console, enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description:<8}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("docs"),
        TaskProgressColumn(),
        TextColumn("{task.fields[mb]:>8.1f} MB"),
        TextColumn("{task.fields[rate]:>7.0f} docs/s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
        transient=False,
        refresh_per_second=4,
    )


def counted_progress(console: Console, enabled: bool, detail: str = "") -> Progress:
    """A bar over counted units (proxy runs, requests, experts): label, done/total, a
    ``detail`` template over task fields, elapsed time and ETA — the one look every
    long step of metamix shares."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(detail),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
        refresh_per_second=4,
    )
