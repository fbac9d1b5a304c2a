"""Meta-rater style selection of scored documents: weighted, normalized scores ranked per
domain in DuckDB, cut by fraction or token budget (the rules and file formats are in
``run``).

The config and file readers load eagerly; the DuckDB side only when used, so reading a run
config does not import DuckDB.
"""

from __future__ import annotations

from typing import Any

from metamix.pipeline.selection.config import SelectConfig, resolve_weights
from metamix.pipeline.selection.files import (
    Mixture,
    SelectionError,
    WeightsFile,
    load_mixture_file,
    load_weights_file,
    save_weights_file,
)

_LAZY = {
    "run_selection": "metamix.pipeline.selection.run",
    "SelectionInvariantError": "metamix.pipeline.selection.summary",
    "print_summary": "metamix.pipeline.selection.summary",
    "render_summary_table": "metamix.pipeline.selection.summary",
}

__all__ = [
    "Mixture",
    "SelectConfig",
    "SelectionError",
    "SelectionInvariantError",
    "WeightsFile",
    "load_mixture_file",
    "load_weights_file",
    "print_summary",
    "render_summary_table",
    "resolve_weights",
    "run_selection",
    "save_weights_file",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
