"""Gopher repetition rules (Rae et al. 2021, table A1) as datatrove 0.10 applies them.

Signals, all fractions in [0, 1] and NaN only for empty text (datatrove's "empty" reason):

- ``gopher_rep_dup_para_frac`` / ``gopher_rep_dup_para_char_frac``: paragraphs
  (``text.strip()`` split on 2+ newlines) repeating an earlier paragraph, as a fraction of
  paragraphs / their characters as a fraction of ``len(text)``.
- ``gopher_rep_dup_line_frac`` / ``gopher_rep_dup_line_char_frac``: same for lines
  (split on 1+ newlines).
- ``gopher_rep_top_{n}gram_char_frac``: characters of the most frequent word n-gram
  (words joined by spaces) times its count, over ``len(text)``; 0 when the text has fewer
  than n words (datatrove skips the rule then).
- ``gopher_rep_dup_{n}gram_char_frac``: characters (words joined without spaces) of word
  n-grams that repeat an earlier n-gram, scanning left to right and jumping past each
  repeat, over ``len(text)``.

One difference from datatrove, by design: datatrove's scan does not remember n-grams it
jumped over, so an n-gram whose only earlier copy was jumped over does not count there; we
count it. It only matters inside already heavily repeated text.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from metamix.scorers._jit import jit
from metamix.scorers._ngrams import top_ngram_per_row
from metamix.scorers._text import (
    TextView,
    duplicate_stats,
    encode,
    per_row_sum,
    row_scoped_ids,
    safe_ratio,
    split_pieces,
    text_view,
)
from metamix.scorers.base import Direction, QualityFilter, Signals
from metamix.scorers.registry import register

DEFAULT_TOP_N_GRAMS: tuple[tuple[int, float], ...] = ((2, 0.2), (3, 0.18), (4, 0.16))
DEFAULT_DUP_N_GRAMS: tuple[tuple[int, float], ...] = (
    (5, 0.15),
    (6, 0.14),
    (7, 0.13),
    (8, 0.12),
    (9, 0.11),
    (10, 0.10),
)


@register
class GopherRepetitionScorer(QualityFilter):
    name = "gopher_repetition"

    def __init__(
        self,
        dup_line_frac: float | None = 0.3,
        dup_para_frac: float | None = 0.3,
        dup_line_char_frac: float | None = 0.2,
        dup_para_char_frac: float | None = 0.2,
        top_n_grams: Sequence[Sequence[float]] = DEFAULT_TOP_N_GRAMS,
        dup_n_grams: Sequence[Sequence[float]] = DEFAULT_DUP_N_GRAMS,
    ) -> None:
        self.dup_line_frac = dup_line_frac
        self.dup_para_frac = dup_para_frac
        self.dup_line_char_frac = dup_line_char_frac
        self.dup_para_char_frac = dup_para_char_frac
        self.top_n_grams = tuple((int(n), float(frac)) for n, frac in top_n_grams)
        self.dup_n_grams = tuple((int(n), float(frac)) for n, frac in dup_n_grams)

    def directions(self) -> dict[str, Direction]:
        return {f.name: "lower" for f in self.signal_schema()}   # every signal is a repeat

    def signal_schema(self) -> pa.Schema:
        names = [
            "gopher_rep_dup_para_frac",
            "gopher_rep_dup_para_char_frac",
            "gopher_rep_dup_line_frac",
            "gopher_rep_dup_line_char_frac",
        ]
        names += [f"gopher_rep_top_{n}gram_char_frac" for n, _ in self.top_n_grams]
        names += [f"gopher_rep_dup_{n}gram_char_frac" for n, _ in self.dup_n_grams]
        return pa.schema([(name, pa.float32()) for name in names])

    def signals(self, batch: pa.RecordBatch) -> Signals:
        view = text_view(batch)
        n = view.n_rows
        text_len = view.char_lengths
        empty = text_len == 0
        out: Signals = {}

        count, chars, total = _paragraph_duplicates(view.text, n)
        out["gopher_rep_dup_para_frac"] = safe_ratio(count, total)
        out["gopher_rep_dup_para_char_frac"] = safe_ratio(chars, text_len)

        count, chars, total = _line_duplicates(view, n)
        out["gopher_rep_dup_line_frac"] = safe_ratio(count, total)
        out["gopher_rep_dup_line_char_frac"] = safe_ratio(chars, text_len)

        for size, _ in self.top_n_grams:
            out[f"gopher_rep_top_{size}gram_char_frac"] = safe_ratio(
                _top_ngram_chars(view, size), text_len
            )
        for size, _ in self.dup_n_grams:
            out[f"gopher_rep_dup_{size}gram_char_frac"] = safe_ratio(
                _repeated_ngram_chars(view, size), text_len
            )
        for name, values in out.items():
            values[empty] = np.nan
            out[name] = values
        out["_empty"] = empty
        return out

    def drop_rules(self, signals: Signals) -> list[tuple[str, np.ndarray]]:
        rules: list[tuple[str, np.ndarray]] = [("empty", signals["_empty"])]
        with np.errstate(invalid="ignore"):
            for reason, threshold in (
                ("dup_para_frac", self.dup_para_frac),
                ("dup_para_char_frac", self.dup_para_char_frac),
                ("dup_line_frac", self.dup_line_frac),
                ("dup_line_char_frac", self.dup_line_char_frac),
            ):
                if threshold:
                    rules.append((reason, signals[f"gopher_rep_{reason}"] > threshold))
            for size, threshold in self.top_n_grams:
                column = signals[f"gopher_rep_top_{size}gram_char_frac"]
                rules.append((f"top_{size}_gram", column > threshold))
            for size, threshold in self.dup_n_grams:
                column = signals[f"gopher_rep_dup_{size}gram_char_frac"]
                rules.append((f"duplicated_{size}_n_grams", column > threshold))
        return rules


def _line_duplicates(view: TextView, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``re.split("\\n+", text)`` duplicates, from the cheaper ``split("\\n")``: the regex
    split is the plain split without its empty pieces, except a first or last one."""
    pieces = view.newline_lines
    parent = pieces.parent
    first = np.r_[True, parent[1:] != parent[:-1]] if parent.size else np.zeros(0, bool)
    last = np.r_[parent[1:] != parent[:-1], True] if parent.size else np.zeros(0, bool)
    keep = (pieces.lengths > 0) | first | last
    parent = parent[keep]
    pair_ids = row_scoped_ids(parent, view.newline_line_ids[keep])
    count, chars = duplicate_stats(parent, pair_ids, pieces.lengths[keep], n)
    return count, chars, per_row_sum(parent, None, n)


def _paragraph_duplicates(text: pa.Array, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``re.split("\\n{2,}", text.strip())`` duplicates without a regex: split the stripped
    text on "\\n"; empty pieces separate paragraphs (a stripped text has none at its ends,
    except an empty text, which is one empty paragraph). A paragraph's identity is a hash of
    its lines' ids; its length is its lines' lengths plus the newlines between them."""
    pieces = split_pieces(pc.utf8_trim_whitespace(text), "\n", regex=False)
    parent = pieces.parent
    size = parent.size
    line_ids = encode(pieces.values).astype(np.uint64)
    first = np.r_[True, parent[1:] != parent[:-1]] if size else np.zeros(0, bool)
    nonempty = pieces.lengths > 0
    blank_text = first & np.r_[parent[1:] != parent[:-1], True] & ~nonempty if size else first
    # a paragraph starts at a non-empty piece that begins its row or follows an empty piece
    starts_paragraph = (nonempty & (first | np.r_[False, ~nonempty[:-1]])) | blank_text
    member = nonempty | blank_text
    paragraph = np.cumsum(starts_paragraph) - 1
    index = np.flatnonzero(member)
    para_of = paragraph[index]
    starts = np.flatnonzero(starts_paragraph)
    position = index - starts[para_of]  # line number inside the paragraph
    with np.errstate(over="ignore"):
        mixed = (line_ids[index] + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
        mixed ^= (position.astype(np.uint64) + np.uint64(1)) * np.uint64(0xBF58476D1CE4E5B9)
        mixed ^= mixed >> np.uint64(31)
        keys = np.add.reduceat(mixed, np.searchsorted(para_of, np.arange(starts.size)))
    lines_in = np.bincount(para_of, minlength=starts.size)[: starts.size]
    lengths = np.bincount(para_of, weights=pieces.lengths[index], minlength=starts.size)[
        : starts.size
    ] + np.maximum(lines_in - 1, 0)
    para_parent = parent[starts]
    keys ^= lengths.astype(np.uint64) * np.uint64(0x94D049BB133111EB)
    pair_ids = row_scoped_ids(para_parent, keys.view(np.int64))  # groups the keys themselves
    count, chars = duplicate_stats(para_parent, pair_ids, lengths, n)
    return count, chars, per_row_sum(para_parent, None, n)


def _top_ngram_chars(view: TextView, size: int) -> np.ndarray:
    """Per row: len(" ".join(top n-gram)) * its count; without repeats the top n-gram is the
    row's first one (count 1); 0 for rows with fewer than ``size`` words."""
    tokens = view.tokens
    n = view.n_rows
    top_position, top_count = top_ngram_per_row(view.token_repeats(size), tokens.row, n)
    row_first = np.searchsorted(tokens.row, np.arange(n))
    has_ngram = view.token_counts >= size
    fallback = (top_position < 0) & has_ngram
    top_position[fallback] = row_first[fallback]
    top_count[fallback] = 1
    chars = np.zeros(n, dtype=np.float64)
    has = top_position >= 0
    start = top_position[has]
    prefix = tokens.length_prefix
    chars[has] = (prefix[start + size] - prefix[start] + size - 1) * top_count[has]
    return chars


def _repeated_ngram_chars(view: TextView, size: int) -> np.ndarray:
    """Per row: characters of repeated n-grams found by datatrove's jump-ahead scan."""
    repeats = view.token_repeats(size)
    repeated = repeats.positions[~repeats.is_first]  # ascending
    return _jump_scan_chars(repeated, view.tokens.row, view.tokens.length_prefix, size, view.n_rows)


@jit
def _jump_scan_chars(
    repeated: np.ndarray, token_row: np.ndarray, prefix: np.ndarray, size: int, n_rows: int
) -> np.ndarray:
    """The scan selects the first repeated position of a row, jumps ``size`` words, and
    continues from the next repeated position at or after that; the selected n-grams'
    characters (``prefix``: cumulative token lengths) add up per row."""
    chars = np.zeros(n_rows, dtype=np.float64)
    current_row = -1
    next_allowed = 0
    for position in repeated:
        row = token_row[position]
        if row != current_row:
            current_row = row
            next_allowed = position
        if position >= next_allowed:
            chars[row] += prefix[position + size] - prefix[position]
            next_allowed = position + size
    return chars
