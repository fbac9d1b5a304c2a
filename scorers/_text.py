"""Vectorized text views shared by the heuristic scorer families.

Every family needs some of the same intermediate views of a batch (word tokens, lines,
token ids). Computing them once per batch and sharing them is most of the speed of the
heuristics, so ``text_view(batch)`` keeps the views of the most recent batch: families
scoring the same batch one after the other reuse them. The cache holds a reference to the
text array it was built from, so an identity hit can never see recycled memory.

Work runs on the batch's raw UTF-8 bytes with numpy (word tokens, n-grams: see
``metamix.scorers._tokens``) or in Arrow's C++ string kernels (line splitting, a few anchored
regexes). Grouping (duplicates, most frequent n-gram) uses 64-bit hash keys (see
``metamix.scorers._ngrams``) instead of per-document Python dicts. The only per-document Python
loop left is over the (rare) lines longer than 1,000 characters in the C4 word-length rule.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from metamix.scorers._charclass import ByteClasses, byte_classes, utf8_buffer
from metamix.scorers._ngrams import Repeats, group_ids_within_rows, repeated_ngrams
from metamix.scorers._tokens import Tokens, tokenize_buffer

# Line boundaries of Python's str.splitlines().
SPLITLINES_PATTERN = r"\r\n|[\n\r\x{0b}\x{0c}\x{1c}\x{1d}\x{1e}\x{85}\x{2028}\x{2029}]"


def regex_char_class(chars: str | set[str] | tuple[str, ...]) -> str:
    """An RE2 character class matching exactly ``chars`` (escaped as code points)."""
    return "[" + "".join(f"\\x{{{ord(c):x}}}" for c in sorted(set(chars))) + "]"


@dataclass(frozen=True)
class Pieces:
    """A flattened list of substrings with the row (document or line) each came from."""

    values: pa.Array
    parent: np.ndarray  # int64, non-decreasing

    @cached_property
    def lengths(self) -> np.ndarray:
        return utf8_lengths(self.values)


def utf8_lengths(strings: pa.Array) -> np.ndarray:
    return pc.utf8_length(strings).to_numpy(zero_copy_only=False).astype(np.int64)


def split_pieces(strings: pa.Array, pattern: str, *, regex: bool) -> Pieces:
    """Split every string on ``pattern`` and flatten, keeping empty pieces."""
    lists = (
        pc.split_pattern_regex(strings, pattern) if regex else pc.split_pattern(strings, pattern)
    )
    return Pieces(pc.list_flatten(lists), pc.list_parent_indices(lists).to_numpy().astype(np.int64))


def per_row_sum(parent: np.ndarray, values: np.ndarray | None, n_rows: int) -> np.ndarray:
    """Sum ``values`` (or count items when None) into their parent rows."""
    return np.bincount(parent, weights=values, minlength=n_rows)[:n_rows]


def flag(strings: pa.Array, pattern: str) -> np.ndarray:
    return pc.match_substring_regex(strings, pattern).to_numpy(zero_copy_only=False)


def safe_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN where the denominator is 0 (signal undefined)."""
    num = np.asarray(numerator, dtype=np.float64)
    den = np.asarray(denominator, dtype=np.float64)
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


# --- grouping: duplicates and most frequent items per row, hash-based --------------------
def encode(keys: pa.Array | np.ndarray) -> np.ndarray:
    """Dense int64 ids in order of first appearance (Arrow hash table, no sort)."""
    arr = keys if isinstance(keys, pa.Array | pa.ChunkedArray) else pa.array(keys)
    encoded = pc.dictionary_encode(arr)
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)


def first_occurrence(ids: np.ndarray) -> np.ndarray:
    """True where an id (from ``encode``) appears for the first time.

    ``encode`` numbers ids by first appearance, so a first occurrence is exactly where the
    id exceeds every id before it.
    """
    if ids.size == 0:
        return np.zeros(0, dtype=bool)
    is_first = np.empty(ids.size, dtype=bool)
    is_first[0] = True
    is_first[1:] = ids[1:] > np.maximum.accumulate(ids)[:-1]
    return is_first


def row_scoped_ids(parent: np.ndarray, item_ids: np.ndarray) -> np.ndarray:
    """Ids of (row, item) pairs, so equal items in different rows never match."""
    return group_ids_within_rows(item_ids.astype(np.int64), parent)


def duplicate_stats(
    parent: np.ndarray, pair_ids: np.ndarray, lengths: np.ndarray, n_rows: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: how many items repeat an earlier item, and their total length.

    Same as datatrove's ``find_duplicates`` (every occurrence after the first counts).
    """
    repeated = ~first_occurrence(pair_ids)
    dup_count = per_row_sum(parent[repeated], None, n_rows)
    dup_chars = per_row_sum(parent[repeated], lengths[repeated].astype(np.float64), n_rows)
    return dup_count, dup_chars


# --- the shared per-batch view --------------------------------------------------------------
class TextView:
    """Lazily computed views of one batch's ``text`` column, shared by all families."""

    def __init__(self, text: pa.Array) -> None:
        if text.null_count:
            text = pc.fill_null(text, "")
        if pa.types.is_large_string(text.type):
            text = text.cast(pa.string())
        self.text = text
        self.n_rows = len(text)
        self._repeats: dict[int, Repeats] = {}

    @cached_property
    def char_lengths(self) -> np.ndarray:
        return utf8_lengths(self.text)

    @cached_property
    def tokens(self) -> Tokens:
        """spaCy-like word tokens (see ``metamix.scorers._tokens``)."""
        return tokenize_buffer(*self.utf8, self.byte_classes)

    @cached_property
    def byte_classes(self) -> ByteClasses:
        """Whitespace/letter/digit masks and non-ASCII characters of ``utf8``."""
        data, size, _ = self.utf8
        return byte_classes(data, size)

    @cached_property
    def token_counts(self) -> np.ndarray:
        return np.bincount(self.tokens.row, minlength=self.n_rows)[: self.n_rows]

    def token_repeats(self, n: int) -> Repeats:
        """Repeated word n-grams of the tokens (``n`` >= 2), built up from shorter ones."""
        cache = self._repeats
        for size in range(2, n + 1):
            if size not in cache:
                cache[size] = repeated_ngrams(
                    self.tokens.hash.view(np.uint64), self.tokens.row, size, cache.get(size - 1)
                )
        return cache[n]

    @cached_property
    def utf8(self) -> tuple[np.ndarray, int, np.ndarray]:
        """Padded UTF-8 bytes, their length and row offsets (see ``utf8_buffer``)."""
        return utf8_buffer(self.text)

    @cached_property
    def has_rare_line_breaks(self) -> bool:
        """Whether any line break other than "\\n" occurs (they need the slower regex split)."""
        data, size, _ = self.utf8
        b = data[:size]
        ascii_breaks = (b == 13) | ((b - np.uint8(11)) < 2) | ((b - np.uint8(28)) < 3)
        if ascii_breaks.any():
            return True
        nel = (b[1:] == 0x85) & (b[:-1] == 0xC2)
        separators = ((b[2:] == 0xA8) | (b[2:] == 0xA9)) & (b[1:-1] == 0x80) & (b[:-2] == 0xE2)
        return bool(nel.any() or separators.any())

    @cached_property
    def splitlines(self) -> Pieces:
        """Lines as ``str.splitlines()`` splits them, plus one extra empty piece per row
        when the text is empty or ends with a line break (see ``splitlines_counts``)."""
        if not self.has_rare_line_breaks:
            return self.newline_lines
        return split_pieces(self.text, SPLITLINES_PATTERN, regex=True)

    @cached_property
    def splitlines_counts(self) -> np.ndarray:
        """Number of lines ``str.splitlines()`` returns (no trailing empty line)."""
        pieces = per_row_sum(self.splitlines.parent, None, self.n_rows).astype(np.int64)
        if self.has_rare_line_breaks:
            ends_with_break = flag(self.text, "(?:" + SPLITLINES_PATTERN + ")$")
        else:
            data, _, offsets = self.utf8
            ends_with_break = (offsets[1:] > offsets[:-1]) & (
                data[np.maximum(offsets[1:] - 1, 0)] == 10
            )
        empty = self.char_lengths == 0
        return pieces - (ends_with_break | empty)

    @cached_property
    def newline_lines(self) -> Pieces:
        """``text.split("\\n")``."""
        return split_pieces(self.text, "\n", regex=False)

    @cached_property
    def newline_line_ids(self) -> np.ndarray:
        """Batch-wide ids of the ``newline_lines`` strings (equal lines, equal ids)."""
        return encode(self.newline_lines.values)


_cache_lock = threading.Lock()
_cached: tuple[pa.Array, TextView] | None = None


def text_view(batch: pa.RecordBatch) -> TextView:
    """The shared view of ``batch``'s text column (reused across families on one batch)."""
    global _cached
    text = batch.column("text")
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    with _cache_lock:
        if _cached is not None and _same_array(_cached[0], text):
            return _cached[1]
    view = TextView(text)
    with _cache_lock:
        _cached = (text, view)
    return view


def forget_cached_view() -> None:
    """Drop the kept view (and the text it holds)."""
    global _cached
    with _cache_lock:
        _cached = None


def _same_array(a: pa.Array, b: pa.Array) -> bool:
    if a is b:
        return True
    if len(a) != len(b) or a.offset != b.offset or a.type != b.type:
        return False
    buffers_a, buffers_b = a.buffers(), b.buffers()
    return all(
        (x is None and y is None) or (x is not None and y is not None and x.address == y.address)
        for x, y in zip(buffers_a, buffers_b, strict=True)
    )
