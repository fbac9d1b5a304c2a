"""The page as data: sections holding figures (Vega-Lite specs) and tables, plus the notes
that say which figure was skipped and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd


@dataclass
class Figure:
    id: str                      # file-safe and unique: the PNG is <id>.png
    title: str
    caption: str
    spec: dict[str, Any]         # a complete Vega-Lite spec, data inline


@dataclass
class Table:
    id: str
    title: str
    frame: pd.DataFrame
    caption: str = ""
    wide_columns: tuple[str, ...] = ()   # long text (excerpts): wrapped, not truncated


@dataclass
class Section:
    id: str
    title: str
    intro: str = ""
    items: list[Figure | Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)   # what was skipped, and why

    @property
    def figures(self) -> list[Figure]:
        return [i for i in self.items if isinstance(i, Figure)]

    def add(self, item: Figure | Table | None, skipped: str = "") -> None:
        """Add ``item``; when it is None (its data are absent), record ``skipped``."""
        if item is not None:
            self.items.append(item)
        elif skipped:
            self.notes.append(skipped)
