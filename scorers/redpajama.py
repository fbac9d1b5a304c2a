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

from metamix.scorers._charclass import NUMERIC, UPPER, WORD, ByteClasses, per_code_point
from metamix.scorers._hashing import hash_spans
from metamix.scorers._ngrams import group_sizes_per_row, repeated_ngrams, top_ngram_per_row
from metamix.scorers._redpajama_scan import line_means, normalized_words, word_run_counts
from metamix.scorers._text import safe_ratio, text_view
from metamix.scorers.base import Scorer
from metamix.scorers.registry import register

_nfd_extra_cache: dict[int, int] = {}


@register
class RedPajamaScorer(Scorer):
    name = "redpajama"
    column_directions = {
        "rps_doc_word_count": "neutral", "rps_doc_num_sentences": "neutral",
        "rps_doc_mean_word_length": "neutral",
        # 1.0 for any short text, low for repetitive text: length-bound, so not "good"
        "rps_doc_frac_unique_words": "neutral", "rps_doc_unigram_entropy": "neutral",
        "rps_doc_frac_no_alph_words": "lower", "rps_doc_frac_chars_top_2gram": "lower",
        "rps_doc_frac_chars_top_3gram": "lower", "rps_lines_uppercase_letter_fraction": "lower",
        "rps_lines_numerical_chars_fraction": "lower",
        "rps_lines_ending_with_terminal_punctution_mark": "higher",
    }

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
        data, _, offsets = view.utf8
        classes = view.byte_classes
        space, lead_flags = classes.space, classes.lead_flags
        sentences, raw_words, with_letter = word_run_counts(data, offsets, space, lead_flags, WORD)
        out: dict[str, np.ndarray] = {"rps_doc_num_sentences": sentences.astype(np.int32)}
        out["rps_doc_frac_no_alph_words"] = 1.0 - safe_ratio(with_letter, raw_words)

        word_row, word_hash, word_len, word_start = _normalized_words(data, offsets, classes)
        n_words = _count(word_row, n)
        n_chars = np.bincount(word_row, weights=word_len, minlength=n)[:n]
        out["rps_doc_word_count"] = n_words.astype(np.int32)
        out["rps_doc_mean_word_length"] = safe_ratio(n_chars, n_words)
        sizes, size_rows = group_sizes_per_row(word_hash.view(np.uint64), word_row)
        out["rps_doc_frac_unique_words"] = safe_ratio(_count(size_rows, n), n_words)
        p = sizes / np.maximum(n_words[size_rows], 1)
        entropy = np.bincount(size_rows, weights=-p * np.log(p), minlength=n)[:n]
        out["rps_doc_unigram_entropy"] = np.where(n_words > 0, entropy, np.nan)

        prefix = np.concatenate(([0], np.cumsum(word_len)))
        repeats = None
        for ngram in range(2, max(self.top_ngram_sizes, default=1) + 1):
            repeats = repeated_ngrams(word_hash.view(np.uint64), word_row, ngram, repeats)
            if ngram not in self.top_ngram_sizes:
                continue
            top_index, top_count = top_ngram_per_row(repeats, word_row, n)
            top_chars = np.zeros(n)
            repeated = top_count > 1
            start = top_index[repeated]
            top_chars[repeated] = (prefix[start + ngram] - prefix[start]) * top_count[repeated]
            ratio = safe_ratio(top_chars, n_chars)
            out[f"rps_doc_frac_chars_top_{ngram}gram"] = np.nan_to_num(ratio, nan=0.0)

        upper, numeric, terminal = line_means(
            data, offsets, space, lead_flags, UPPER, NUMERIC, word_start, word_len
        )
        out["rps_lines_uppercase_letter_fraction"] = upper
        out["rps_lines_numerical_chars_fraction"] = numeric
        out["rps_lines_ending_with_terminal_punctution_mark"] = terminal
        return out


def _count(rows: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(rows, minlength=n)[:n].astype(np.int64)


def _nfd_extra(code_points: np.ndarray) -> np.ndarray:
    """Extra code points NFD adds per character ("é" -> "e" + accent: 1)."""
    return per_code_point(code_points, lambda ch: len(unicodedata.normalize("NFD", ch)) - 1,
                          _nfd_extra_cache, np.int64)


def _normalized_words(
    data: np.ndarray, offsets: np.ndarray, classes: ByteClasses
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """RPv2's normalized words: ASCII punctuation deleted, ASCII lowercased, split on
    whitespace. Returns row, hash, length (NFD code points) and start in ``data`` per word.

    Deleting punctuation can join pieces ("a,b" -> "ab") but never whitespace-separated
    chunks, so each whitespace chunk with a non-punctuation byte is one word.
    Non-ASCII letters are not case-folded for word identity (lengths are exact).
    """
    compact, starts, ends, row, length, original_start = normalized_words(
        data, offsets, classes.space
    )
    if classes.leads.size and starts.size:
        # non-ASCII characters are never deleted, so they keep their order among words
        extra = _nfd_extra(classes.code_points)
        has_extra = extra > 0
        if has_extra.any():
            owner = np.searchsorted(original_start, classes.leads[has_extra], side="right") - 1
            owned = owner >= 0
            length = length + np.bincount(
                owner[owned], weights=extra[has_extra][owned], minlength=starts.size
            )[: starts.size].astype(np.int64)
    return row, hash_spans(compact, starts, ends), length, original_start
