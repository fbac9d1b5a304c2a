"""``metamix scorers``: every registered scorer, its output columns and its parameters.

Users pick scorers and Meta-rater score directions from this list, so it is built from the
scorer classes themselves (constructor signatures, output schemas, declared directions)
rather than from documentation that could drift.
"""

from __future__ import annotations

import inspect
from typing import Any

from rich.console import Console
from rich.table import Table

from metamix.scorers.base import Scorer
from metamix.scorers.registry import load_builtin


def _params(cls: type[Scorer]) -> list[tuple[str, str]]:
    out = []
    for name, p in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        default = "required" if p.default is inspect.Parameter.empty else repr(p.default)
        out.append((name, default))
    return out


def describe_scorers() -> list[dict[str, Any]]:
    """One record per registered scorer: name, parameters with defaults, output columns with
    their Arrow type and direction (``higher``/``lower``/``neutral``, ``None`` when the
    scorer does not declare one, e.g. for text columns)."""
    records = []
    for name, cls in sorted(load_builtin().items()):
        try:
            scorer = cls()
        except TypeError:  # a scorer with required parameters lists its class-level facts
            scorer = None
        columns = []
        if scorer is not None:
            directions = scorer.directions()
            for f in scorer.output_schema():
                columns.append({"name": f.name, "type": str(f.type),
                                "direction": directions.get(f.name)})
        records.append({"name": name, "params": _params(cls), "columns": columns,
                        "doc": (cls.__doc__ or inspect.getdoc(inspect.getmodule(cls))
                                or "").strip().split("\n")[0]})
    return records


def print_scorers(console: Console) -> None:
    table = Table(title="registered scorers (config: score.scorers[].name / params)",
                  show_lines=True)
    for col in ("scorer", "output columns (type, direction)", "parameters (default)"):
        table.add_column(col, overflow="fold")
    for rec in describe_scorers():
        cols = "\n".join(f"{c['name']} ({c['type']}"
                         + (f", {c['direction']}" if c["direction"] else "") + ")"
                         for c in rec["columns"]) or "(depends on parameters)"
        params = "\n".join(f"{k} = {v}" for k, v in rec["params"]) or "-"
        table.add_row(f"[bold]{rec['name']}[/]\n{rec['doc']}", cols, params)
    console.print(table)
