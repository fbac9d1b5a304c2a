"""Gopher quality rules (Rae et al. 2021, table A1) as datatrove 0.10 applies them.

Signals (NaN where the denominator is zero, i.e. the signal is undefined):

- ``gopher_word_count``: words with at least one non-punctuation character.
- ``gopher_mean_word_length``: mean length of those words (NaN when there are none).
- ``gopher_hash_word_ratio``: ``text.count("#")`` / all words, symbols included.
- ``gopher_ellipsis_word_ratio``: (``count("...")`` + ``count("…")``) / all words.
- ``gopher_bullet_lines_ratio``: lines (``str.splitlines``) starting, after leading
  whitespace, with "•" or "-".
- ``gopher_end_ellipsis_lines_ratio``: lines ending, before trailing whitespace, with
  "..." or "…".
- ``gopher_alpha_words_ratio``: words containing an alphabetic character / all words.
- ``gopher_stop_word_count``: distinct stop words present (case-sensitive, as datatrove).

Words come from our compiled approximation of spaCy's English tokenizer
(``metamix.scorers._tokens``), which datatrove uses; rule order, thresholds and reason names are
datatrove's. A threshold set to ``None`` or 0 disables its rule, as datatrove's
truthiness checks do.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

import numpy as np
import pyarrow as pa

from metamix.scorers._hashing import token_hash
from metamix.scorers._jit import jit
from metamix.scorers._text import flag, per_row_sum, safe_ratio, text_view
from metamix.scorers.base import QualityFilter, Signals
from metamix.scorers.registry import register

DEFAULT_STOP_WORDS: tuple[str, ...] = ("the", "be", "to", "of", "and", "that", "have", "with")
_WS = r"[\s\x{0b}\x{1c}-\x{1f}\x{85}\p{Z}]*"


@register
class GopherQualityScorer(QualityFilter):
    name = "gopher_quality"
    column_directions = {
        "gopher_word_count": "neutral", "gopher_mean_word_length": "neutral",
        "gopher_stop_word_count": "neutral", "gopher_hash_word_ratio": "lower",
        "gopher_ellipsis_word_ratio": "lower", "gopher_bullet_lines_ratio": "lower",
        "gopher_end_ellipsis_lines_ratio": "lower", "gopher_alpha_words_ratio": "higher",
    }

    def __init__(
        self,
        min_doc_words: int | None = 50,
        max_doc_words: int | None = 100_000,
        min_avg_word_length: float | None = 3,
        max_avg_word_length: float | None = 10,
        max_symbol_word_ratio: float | None = 0.1,
        max_bullet_lines_ratio: float | None = 0.9,
        max_ellipsis_lines_ratio: float | None = 0.3,
        max_non_alpha_words_ratio: float | None = 0.8,
        min_stop_words: int | None = 2,
        stop_words: Sequence[str] | None = None,
    ) -> None:
        self.min_doc_words = min_doc_words
        self.max_doc_words = max_doc_words
        self.min_avg_word_length = min_avg_word_length
        self.max_avg_word_length = max_avg_word_length
        self.max_symbol_word_ratio = max_symbol_word_ratio
        self.max_bullet_lines_ratio = max_bullet_lines_ratio
        self.max_ellipsis_lines_ratio = max_ellipsis_lines_ratio
        # datatrove's name; it is really the *minimum* fraction of words with a letter.
        self.max_non_alpha_words_ratio = max_non_alpha_words_ratio
        self.min_stop_words = min_stop_words
        self.stop_words = stop_words

    def signal_schema(self) -> pa.Schema:
        return pa.schema(
            [
                ("gopher_word_count", pa.int32()),
                ("gopher_mean_word_length", pa.float32()),
                ("gopher_hash_word_ratio", pa.float32()),
                ("gopher_ellipsis_word_ratio", pa.float32()),
                ("gopher_bullet_lines_ratio", pa.float32()),
                ("gopher_end_ellipsis_lines_ratio", pa.float32()),
                ("gopher_alpha_words_ratio", pa.float32()),
                ("gopher_stop_word_count", pa.int32()),
            ]
        )

    def signals(self, batch: pa.RecordBatch) -> Signals:
        view = text_view(batch)
        n = view.n_rows
        tokens = view.tokens
        n_words = view.token_counts
        stop_hashes, stop_filter = self._stop_word_table
        n_non_symbol, non_symbol_chars, n_alpha, stop_words = _word_counts(
            tokens.row, tokens.non_symbol, tokens.has_alpha, tokens.n_chars, tokens.hash,
            stop_hashes, stop_filter, n,
        )

        hashes, ellipses = _hash_and_ellipsis_counts(*view.utf8)

        lines = view.splitlines
        bullet = flag(lines.values, "^" + _WS + "[•-]")
        end_ellipsis = flag(lines.values, r"(?:\.\.\.|…)" + _WS + "$")
        n_lines = view.splitlines_counts

        return {
            "gopher_word_count": n_non_symbol.astype(np.int32),
            "gopher_mean_word_length": safe_ratio(non_symbol_chars, n_non_symbol),
            "gopher_hash_word_ratio": safe_ratio(hashes, n_words),
            "gopher_ellipsis_word_ratio": safe_ratio(ellipses, n_words),
            "gopher_bullet_lines_ratio": safe_ratio(
                per_row_sum(lines.parent[bullet], None, n), n_lines
            ),
            "gopher_end_ellipsis_lines_ratio": safe_ratio(
                per_row_sum(lines.parent[end_ellipsis], None, n), n_lines
            ),
            "gopher_alpha_words_ratio": safe_ratio(n_alpha, n_words),
            "gopher_stop_word_count": stop_words.astype(np.int32),
        }

    @cached_property
    def _stop_word_table(self) -> tuple[np.ndarray, np.ndarray]:
        """Sorted hashes of the distinct stop words (tokens are compared by hash, exact for
        short words) and which low 16 bits occur among them (a cheap first test)."""
        chosen = DEFAULT_STOP_WORDS if self.stop_words is None else self.stop_words
        hashes = np.unique(np.array([token_hash(w) for w in chosen], dtype=np.int64))
        stop_filter = np.zeros(1 << 16, dtype=np.bool_)
        stop_filter[hashes & 0xFFFF] = True
        return hashes, stop_filter

    def drop_rules(self, signals: Signals) -> list[tuple[str, np.ndarray]]:
        words = signals["gopher_word_count"]
        mean_len = signals["gopher_mean_word_length"]
        rules: list[tuple[str, np.ndarray]] = []

        def add(reason: str, threshold: float | None, failed) -> None:
            if threshold:
                with np.errstate(invalid="ignore"):
                    rules.append((reason, np.asarray(failed(threshold), dtype=bool)))

        add("gopher_short_doc", self.min_doc_words, lambda t: words < t)
        add("gopher_long_doc", self.max_doc_words, lambda t: words > t)
        add("gopher_below_avg_threshold", self.min_avg_word_length, lambda t: mean_len < t)
        add("gopher_above_avg_threshold", self.max_avg_word_length, lambda t: mean_len > t)
        add(
            "gopher_too_many_hashes",
            self.max_symbol_word_ratio,
            lambda t: signals["gopher_hash_word_ratio"] > t,
        )
        add(
            "gopher_too_many_ellipsis",
            self.max_symbol_word_ratio,
            lambda t: signals["gopher_ellipsis_word_ratio"] > t,
        )
        add(
            "gopher_too_many_bullets",
            self.max_bullet_lines_ratio,
            lambda t: signals["gopher_bullet_lines_ratio"] > t,
        )
        add(
            "gopher_too_many_end_ellipsis",
            self.max_ellipsis_lines_ratio,
            lambda t: signals["gopher_end_ellipsis_lines_ratio"] > t,
        )
        add(
            "gopher_below_alpha_threshold",
            self.max_non_alpha_words_ratio,
            lambda t: signals["gopher_alpha_words_ratio"] < t,
        )
        add(
            "gopher_enough_stop_words",
            self.min_stop_words,
            lambda t: signals["gopher_stop_word_count"] < t,
        )
        return rules


def _hash_and_ellipsis_counts(
    data: np.ndarray, size: int, offsets: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: ``text.count("#")`` and ``text.count("...") + text.count("…")`` on the
    UTF-8 bytes. ``str.count`` does not overlap, so a run of k dots holds k // 3 "..."."""
    n = offsets.size - 1
    b = data[:size]

    def per_row(positions: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        rows = np.searchsorted(offsets, positions, side="right") - 1
        return np.bincount(rows, weights=weights, minlength=n)[:n]

    hashes = per_row(np.flatnonzero(b == ord("#")))
    dots = np.flatnonzero(b == ord("."))
    ellipses = np.zeros(n)
    if dots.size:
        row = np.searchsorted(offsets, dots, side="right") - 1
        new_run = np.r_[True, (np.diff(dots) != 1) | (row[1:] != row[:-1])]
        run_start = np.flatnonzero(new_run)
        run_length = np.diff(np.r_[run_start, dots.size])
        ellipses += np.bincount(row[run_start], weights=run_length // 3, minlength=n)[:n]
    # "…" is E2 80 A6
    triple = np.flatnonzero((b[:-2] == 0xE2) & (b[1:-1] == 0x80) & (b[2:] == 0xA6))
    if triple.size:
        ellipses += per_row(triple)
    return hashes, ellipses


@jit
def _word_counts(
    row: np.ndarray,
    non_symbol: np.ndarray,
    has_alpha: np.ndarray,
    n_chars: np.ndarray,
    token_hash: np.ndarray,
    stop_hashes: np.ndarray,
    stop_filter: np.ndarray,
    n_rows: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row, in one pass over the tokens: words with a non-symbol character, their
    characters, words with a letter, and distinct stop words present."""
    n_non_symbol = np.zeros(n_rows, np.int64)
    non_symbol_chars = np.zeros(n_rows, np.float64)
    n_alpha = np.zeros(n_rows, np.int64)
    present = np.zeros((n_rows, max(stop_hashes.size, 1)), np.bool_)
    stop_words = np.zeros(n_rows, np.int64)
    for t in range(row.size):
        r = row[t]
        if non_symbol[t]:
            n_non_symbol[r] += 1
            non_symbol_chars[r] += n_chars[t]
        if has_alpha[t]:
            n_alpha[r] += 1
        key = token_hash[t]
        if stop_filter[key & 0xFFFF]:
            k = np.searchsorted(stop_hashes, key)
            if k < stop_hashes.size and stop_hashes[k] == key and not present[r, k]:
                present[r, k] = True
                stop_words[r] += 1
    return n_non_symbol, non_symbol_chars, n_alpha, stop_words
