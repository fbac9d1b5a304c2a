"""The RedPajama-V2 natural-language quality signals that Meta-rater uses.

Definitions follow RPv2's ``app/src/core/quality_signals`` (names keep RPv2's spelling,
including "punctution"). Two views of the text are used:

- *normalized words*: the text with ASCII punctuation deleted, lowercased, NFD-normalized,
  split on whitespace.
- *raw words*: NLTK's WordPunctTokenizer, i.e. runs of ``\\w`` or runs of other
  non-space characters.

Document signals:

- ``rps_doc_word_count``: number of normalized words.
- ``rps_doc_num_sentences``: matches of ``\\b[^.!?]+[.!?]*`` in the raw text, which is the
  number of maximal runs without . ! ? that contain a word character.
- ``rps_doc_mean_word_length``: mean length of normalized words.
- ``rps_doc_frac_unique_words``: distinct normalized words / normalized words.
- ``rps_doc_unigram_entropy``: ``-sum(c/N * ln(c/N))`` over normalized word counts c.
- ``rps_doc_frac_no_alph_words``: raw words without an ASCII letter / raw words.
- ``rps_doc_frac_chars_top_{2,3}gram``: characters (words joined without spaces) of the
  most frequent normalized word n-gram times its count, over all normalized word
  characters; 0 when no n-gram occurs twice.

Line signals, averaged over lines (RPv2 lines end after each "\\n"; an empty text has none):

- ``rps_lines_uppercase_letter_fraction``: uppercase letters / characters of the raw line
  (its newline included).
- ``rps_lines_numerical_chars_fraction``: numeric characters / characters of the
  normalized line (0 for a line that normalizes to nothing).
- ``rps_lines_ending_with_terminal_punctution_mark``: 1 when the line, right-stripped,
  ends with . ! ? or ”.

Undefined values are NaN: the word-based means/ratios without words, line averages without
lines. Counts are never NaN. RPv2 rounds to a fixed precision; we do not.
"""

from __future__ import annotations

import unicodedata

import numpy as np
import pyarrow as pa

from scorers._text import (
    group_sizes_per_row,
    repeated_ngrams,
    safe_ratio,
    text_view,
    top_ngram_per_row,
)
from scorers._tokens import (
    NUMERIC,
    UPPER,
    WORD,
    _hash_spans,
    mark_chars,
)
from scorers.base import Scorer
from scorers.registry import register

_nfd_extra_cache: dict[int, int] = {}


@register
class RedPajamaScorer(Scorer):
    name = "redpajama"

    def __init__(self, top_ngram_sizes: tuple[int, ...] = (2, 3)) -> None:
        self.top_ngram_sizes = tuple(int(n) for n in top_ngram_sizes)

    def output_schema(self) -> pa.Schema:
        fields = [
            ("rps_doc_word_count", pa.int32()),
            ("rps_doc_num_sentences", pa.int32()),
            ("rps_doc_mean_word_length", pa.float32()),
            ("rps_doc_frac_unique_words", pa.float32()),
            ("rps_doc_unigram_entropy", pa.float32()),
            ("rps_doc_frac_no_alph_words", pa.float32()),
        ]
        fields += [(f"rps_doc_frac_chars_top_{n}gram", pa.float32()) for n in self.top_ngram_sizes]
        fields += [
            ("rps_lines_uppercase_letter_fraction", pa.float32()),
            ("rps_lines_numerical_chars_fraction", pa.float32()),
            ("rps_lines_ending_with_terminal_punctution_mark", pa.float32()),
        ]
        return pa.schema(fields)

    def score(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        values = self.compute(batch)
        return {f.name: pa.array(values[f.name], type=f.type) for f in self.output_schema()}

    def compute(self, batch: pa.RecordBatch) -> dict[str, np.ndarray]:
        """All signals as numpy arrays, computed on the batch's UTF-8 bytes."""
        view = text_view(batch)
        n = view.n_rows
        data, size, offsets = view.utf8
        b = data[:size]
        classes = view.byte_classes
        leads, lead_len, lead_flags = classes.leads, classes.lead_len, classes.lead_flags
        row_starts = offsets[:-1]

        def has(flag: int) -> np.ndarray:
            return (lead_flags & flag).astype(bool)

        def row_of(positions: np.ndarray) -> np.ndarray:
            return np.searchsorted(offsets, positions, side="right") - 1

        def run_starts(mask: np.ndarray) -> np.ndarray:
            """Positions where a run of ``mask`` begins (runs never cross rows)."""
            begins = mask.copy()
            begins[1:] &= ~mask[:-1]
            begins[row_starts[row_starts < size]] = mask[row_starts[row_starts < size]]
            return np.flatnonzero(begins)

        space, letter, digit = classes.space, classes.letter, classes.digit
        word_char = letter | digit | (b == 95) | mark_chars(size, leads, lead_len, has(WORD))
        out: dict[str, np.ndarray] = {}

        # sentences: runs without . ! ? that hold a word character
        word_runs = run_starts(word_char)
        terminals = np.flatnonzero((b == 46) | (b == 33) | (b == 63))
        segment = np.searchsorted(terminals, word_runs)
        run_row = row_of(word_runs)
        new_segment = _changes(segment, run_row)
        out["rps_doc_num_sentences"] = _count(run_row[new_segment], n).astype(np.int32)

        # WordPunct words (\w+ | [^\w\s]+) and those with an ASCII letter
        other_runs = run_starts(~word_char & ~space)
        raw_words = _count(run_row, n) + _count(row_of(other_runs), n)
        letter_runs = run_starts(letter)
        owner = np.searchsorted(word_runs, letter_runs, side="right") - 1
        distinct_owner = owner[_changes(owner)]
        with_letter = _count(run_row[distinct_owner], n)
        out["rps_doc_frac_no_alph_words"] = 1.0 - safe_ratio(with_letter, raw_words)

        words = _normalized_words(data, size, offsets, space, leads, lead_len)
        word_row, word_hash, word_len, word_line_key = words
        n_words = _count(word_row, n)
        n_chars = np.bincount(word_row, weights=word_len, minlength=n)[:n]
        out["rps_doc_word_count"] = n_words.astype(np.int32)
        out["rps_doc_mean_word_length"] = safe_ratio(n_chars, n_words)
        sizes, size_rows = group_sizes_per_row(word_hash, word_row)
        out["rps_doc_frac_unique_words"] = safe_ratio(_count(size_rows, n), n_words)
        p = sizes / np.maximum(n_words[size_rows], 1)
        entropy = np.bincount(size_rows, weights=-p * np.log(p), minlength=n)[:n]
        out["rps_doc_unigram_entropy"] = np.where(n_words > 0, entropy, np.nan)

        prefix = np.concatenate(([0], np.cumsum(word_len)))
        repeats = None
        for ngram in range(2, max(self.top_ngram_sizes, default=1) + 1):
            repeats = repeated_ngrams(word_hash, word_row, ngram, repeats)
            if ngram not in self.top_ngram_sizes:
                continue
            top_index, top_count = top_ngram_per_row(repeats, word_row, n)
            top_chars = np.zeros(n)
            repeated = top_count > 1
            start = top_index[repeated]
            top_chars[repeated] = (prefix[start + ngram] - prefix[start]) * top_count[repeated]
            ratio = safe_ratio(top_chars, n_chars)
            out[f"rps_doc_frac_chars_top_{ngram}gram"] = np.nan_to_num(ratio, nan=0.0)

        out.update(
            _line_signals(data, size, offsets, space, letter, digit, leads, lead_flags, words, n)
        )
        return out


def _changes(*keys: np.ndarray) -> np.ndarray:
    """True where any key differs from the previous item (and at the first item)."""
    size = keys[0].size
    out = np.zeros(size, dtype=bool)
    if size:
        out[0] = True
        for key in keys:
            out[1:] |= key[1:] != key[:-1]
    return out


def _count(rows: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(rows, minlength=n)[:n].astype(np.int64)


def _nfd_extra(code_points: np.ndarray) -> np.ndarray:
    """Extra code points NFD adds per character ("é" -> "e" + accent: 1)."""
    unique, inverse = np.unique(code_points, return_inverse=True)
    values = np.empty(unique.size, dtype=np.int64)
    for index, cp in enumerate(unique.tolist()):
        extra = _nfd_extra_cache.get(cp)
        if extra is None:
            valid = cp < 0x110000 and not 0xD800 <= cp < 0xE000
            extra = len(unicodedata.normalize("NFD", chr(cp))) - 1 if valid else 0
            _nfd_extra_cache[cp] = extra
        values[index] = extra
    return values[inverse]


def _normalized_words(data, size, offsets, space, leads, lead_len):
    """RPv2's normalized words: ASCII punctuation deleted, ASCII lowercased, split on
    whitespace. Returns row, hash, length (NFD code points) and line key per word.

    Deleting punctuation can join pieces ("a,b" -> "ab") but never whitespace-separated
    chunks, so each whitespace chunk with a non-punctuation byte is one word.
    Non-ASCII letters are not case-folded for word identity (lengths are exact).
    """
    b = data[:size]
    punct = (
        ((b - np.uint8(33)) < 15)
        | ((b - np.uint8(58)) < 7)
        | ((b - np.uint8(91)) < 6)
        | ((b - np.uint8(123)) < 4)
    )
    removed = np.flatnonzero(punct)
    keep = ~punct
    compact = np.zeros(int(keep.sum()) + 16, dtype=np.uint8)
    kept = b[keep]
    upper = (kept - np.uint8(65)) < 26
    compact[: kept.size] = np.where(upper, kept | np.uint8(0x20), kept)
    compact_space = space[keep]
    compact_offsets = offsets - np.searchsorted(removed, offsets)
    csize = kept.size
    if csize == 0:
        none = np.zeros(0, dtype=np.int64)
        return none, none, none, none
    begins = ~compact_space
    begins[1:] &= compact_space[:-1]
    row_starts = compact_offsets[:-1][compact_offsets[:-1] < csize]
    begins[row_starts] = ~compact_space[row_starts]
    ends_mask = ~compact_space
    ends_mask[:-1] &= compact_space[1:]
    row_ends = compact_offsets[1:][compact_offsets[1:] > compact_offsets[:-1]] - 1
    ends_mask[row_ends] = ~compact_space[row_ends]
    starts = np.flatnonzero(begins & ((compact[:csize] & 0xC0) != 0x80))
    ends = np.flatnonzero(ends_mask) + 1
    if starts.size != ends.size:
        ends = ends[np.searchsorted(ends, starts, side="right")][: starts.size]
    row = np.searchsorted(compact_offsets, starts, side="right") - 1
    conts = np.flatnonzero((compact[:csize] & 0xC0) == 0x80)
    length = (ends - starts) - (np.searchsorted(conts, ends) - np.searchsorted(conts, starts))
    compact_leads = np.flatnonzero(compact[:csize] >= 0xC0)
    if compact_leads.size:
        lead_bytes = compact[compact_leads]
        lengths = np.where(lead_bytes >= 0xF0, 4, np.where(lead_bytes >= 0xE0, 3, 2))
        from scorers._tokens import _decode

        extra = _nfd_extra(_decode(compact, compact_leads, lengths))
        has_extra = extra > 0
        if has_extra.any():
            owner = np.searchsorted(starts, compact_leads[has_extra], side="right") - 1
            length = length + np.bincount(owner, weights=extra[has_extra], minlength=starts.size)[
                : starts.size
            ].astype(np.int64)
    # word start in original coordinates: the start plus removed bytes before it
    original_start = starts + np.searchsorted(
        removed - np.arange(removed.size), starts, side="right"
    )
    return row, _hash_spans(compact, starts, ends), length.astype(np.int64), original_start


def _line_signals(data, size, offsets, space, letter, digit, leads, lead_flags, words, n):
    """RPv2 line signals averaged per document (lines end after each "\n")."""
    b = data  # padded: lookups one byte before/after the text stay in bounds
    newline_ends = np.flatnonzero(b[:size] == 10) + 1
    row_end = offsets[1:]
    unterminated = (row_end > offsets[:-1]) & (b[np.maximum(row_end - 1, 0)] != 10)
    line_end = np.sort(np.concatenate((newline_ends, row_end[unterminated])))
    line_row = np.searchsorted(offsets, line_end - 1, side="right") - 1
    previous_end = np.r_[0, line_end[:-1]]
    same_row = np.r_[False, line_row[1:] == line_row[:-1]]
    line_start = np.where(same_row, previous_end, offsets[line_row])
    n_lines = np.bincount(line_row, minlength=n)[:n]
    out: dict[str, np.ndarray] = {}
    if line_end.size == 0:
        for name in (
            "rps_lines_uppercase_letter_fraction",
            "rps_lines_numerical_chars_fraction",
            "rps_lines_ending_with_terminal_punctution_mark",
        ):
            out[name] = np.full(n, np.nan)
        return out

    def per_line(positions: np.ndarray) -> np.ndarray:
        owner = np.searchsorted(line_end, positions, side="right")
        return np.bincount(owner, minlength=line_end.size)[: line_end.size]

    conts = np.flatnonzero((b[:size] & 0xC0) == 0x80)
    raw_len = (line_end - line_start) - per_line(conts)
    upper = np.concatenate(
        (np.flatnonzero(letter & (b[:size] < 97)), leads[(lead_flags & UPPER) != 0])
    )
    numeric = np.concatenate((np.flatnonzero(digit), leads[(lead_flags & NUMERIC) != 0]))
    upper_frac = np.nan_to_num(safe_ratio(per_line(upper), raw_len), nan=0.0)

    word_row, _, word_len, word_start = words
    word_line = np.searchsorted(line_end, word_start, side="right")
    words_in_line = np.bincount(word_line, minlength=line_end.size)[: line_end.size]
    chars_in_line = np.bincount(word_line, weights=word_len, minlength=line_end.size)[
        : line_end.size
    ]
    normalized_len = chars_in_line + np.maximum(words_in_line - 1, 0)
    numeric_frac = np.nan_to_num(safe_ratio(per_line(numeric), normalized_len), nan=0.0)

    last = line_end - 1  # walk back over trailing whitespace (a few steps, then exact)
    for _ in range(8):
        back = (last >= line_start) & space[np.maximum(last, 0)]
        if not back.any():
            break
        last = np.where(back, last - 1, last)
    for index in np.flatnonzero((last >= line_start) & space[np.maximum(last, 0)]):
        while last[index] >= line_start[index] and space[last[index]]:
            last[index] -= 1
    valid = last >= line_start
    at = np.maximum(last, 0)
    ends_mark = valid & np.isin(b[at], np.frombuffer(b".!?", np.uint8))
    closing_quote = (
        (b[at] == 0x9D) & (b[np.maximum(at - 1, 0)] == 0x80) & (b[np.maximum(at - 2, 0)] == 0xE2)
    )
    ends_mark |= valid & (at - 2 >= line_start) & closing_quote

    for name, values in (
        ("rps_lines_uppercase_letter_fraction", upper_frac),
        ("rps_lines_numerical_chars_fraction", numeric_frac),
        ("rps_lines_ending_with_terminal_punctution_mark", ends_mark.astype(np.float64)),
    ):
        total = np.bincount(line_row, weights=values, minlength=n)[:n]
        out[name] = safe_ratio(total, n_lines)
    return out
