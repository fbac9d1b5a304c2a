"""FineWeb's extra quality rules (Penedo et al. 2024) as datatrove 0.10 applies them.

Lines are ``text.split("\\n")`` without the blank ones (``strip() == ""``). Signals (NaN
when there is no non-blank line: datatrove's "empty" reason):

- ``fineweb_line_punct_ratio``: lines whose last character (no stripping) is terminal
  punctuation in any script.
- ``fineweb_short_line_ratio``: lines of at most ``short_line_length`` characters.
- ``fineweb_char_dup_ratio``: characters of lines repeating an earlier line, over the
  characters of the text without newlines.
- ``fineweb_list_ratio``: newline count over word count (datatrove's "new_line_ratio").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from metamix.scorers._charsets import TERMINAL_PUNCTUATION
from metamix.scorers._text import (
    TextView,
    duplicate_stats,
    flag,
    per_row_sum,
    regex_char_class,
    row_scoped_ids,
    safe_ratio,
    text_view,
)
from metamix.scorers.base import QualityFilter, Signals
from metamix.scorers.registry import register


@register
class FineWebQualityScorer(QualityFilter):
    name = "fineweb"
    column_directions = {
        "fineweb_line_punct_ratio": "higher", "fineweb_short_line_ratio": "lower",
        "fineweb_char_dup_ratio": "lower", "fineweb_list_ratio": "lower",
    }

    def __init__(
        self,
        line_punct_thr: float = 0.12,
        line_punct_exclude_zero: bool = False,
        stop_chars: Sequence[str] | None = None,
        short_line_thr: float = 0.67,
        short_line_length: int = 30,
        char_duplicates_ratio: float = 0.01,
        new_line_ratio: float = 0.3,
    ) -> None:
        self.line_punct_thr = line_punct_thr
        self.line_punct_exclude_zero = line_punct_exclude_zero
        self.stop_chars = stop_chars
        self.short_line_thr = short_line_thr
        self.short_line_length = short_line_length
        self.char_duplicates_ratio = char_duplicates_ratio
        self.new_line_ratio = new_line_ratio

    def signal_schema(self) -> pa.Schema:
        return pa.schema(
            [
                ("fineweb_line_punct_ratio", pa.float32()),
                ("fineweb_short_line_ratio", pa.float32()),
                ("fineweb_char_dup_ratio", pa.float32()),
                ("fineweb_list_ratio", pa.float32()),
            ]
        )

    def signals(self, batch: pa.RecordBatch) -> Signals:
        view = text_view(batch)
        n = view.n_rows
        pieces = view.newline_lines
        nonblank = pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(pieces.values)), 0)
        keep = nonblank.to_numpy(zero_copy_only=False)
        lines = pieces.values.filter(nonblank)
        parent = pieces.parent[keep]
        lengths = pieces.lengths[keep]
        n_lines = per_row_sum(parent, None, n)

        stop_chars = TERMINAL_PUNCTUATION if self.stop_chars is None else self.stop_chars
        ends_punct = flag(lines, _ends_with_any(stop_chars))
        short = lengths <= self.short_line_length
        line_ids = view.newline_line_ids[keep]
        _, dup_chars = duplicate_stats(parent, row_scoped_ids(parent, line_ids), lengths, n)
        newlines = per_row_sum(parent_of_newlines(view), None, n)

        out = {
            "fineweb_line_punct_ratio": safe_ratio(
                per_row_sum(parent[ends_punct], None, n), n_lines
            ),
            "fineweb_short_line_ratio": safe_ratio(per_row_sum(parent[short], None, n), n_lines),
            "fineweb_char_dup_ratio": safe_ratio(dup_chars, view.char_lengths - newlines),
            "fineweb_list_ratio": safe_ratio(newlines, view.token_counts),
        }
        empty = n_lines == 0
        for values in out.values():
            values[empty] = np.nan
        out["_empty"] = empty
        return out

    def drop_rules(self, signals: Signals) -> list[tuple[str, np.ndarray]]:
        punct = signals["fineweb_line_punct_ratio"]
        with np.errstate(invalid="ignore"):
            low_punct = punct < self.line_punct_thr
            if self.line_punct_exclude_zero:
                low_punct &= punct != 0
            return [
                ("empty", signals["_empty"]),
                ("line_punct_ratio", low_punct),
                ("short_line_ratio", signals["fineweb_short_line_ratio"] > self.short_line_thr),
                ("char_dup_ratio", signals["fineweb_char_dup_ratio"] > self.char_duplicates_ratio),
                ("list_ratio", signals["fineweb_list_ratio"] > self.new_line_ratio),
            ]


def _ends_with_any(suffixes: Sequence[str]) -> str:
    """An RE2 pattern for ``str.endswith(tuple(suffixes))``."""
    if all(len(s) == 1 for s in suffixes):
        return regex_char_class(tuple(suffixes)) + "$"
    return "(?:" + "|".join(r"\Q" + s + r"\E" for s in suffixes if s) + ")$"


def parent_of_newlines(view: TextView) -> np.ndarray:
    """Row of every "\\n" in the batch."""
    data, size, offsets = view.utf8
    return np.searchsorted(offsets, np.flatnonzero(data[:size] == 10), side="right") - 1
