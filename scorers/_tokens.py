"""An approximation of spaCy's blank English tokenizer over raw UTF-8 bytes.

datatrove counts words with spaCy, which costs milliseconds per document. Its rules are
simple enough to apply to a whole batch in one compiled pass: split on whitespace, then
in each whitespace chunk peel prefix punctuation off the front ("(", quotes, "$"...),
suffix punctuation off the back (",", ")", quotes, "." after a lowercase letter or
digit...), and split a few infixes (hyphen between letters, "." between lowercase and
uppercase...). Punctuation anywhere else stays inside the token ("\\p{Script", "/usr", "C++").
Exceptions we mirror: single letters with a period ("n.", "A."), dotted abbreviations
("e.g.", "U.S."), a few titles ("Mr."), URLs, and contractions ("do" + "n't", "it" + "'s").
Emoticons and spaCy's long special-case list are not reproduced.

The boundary rules live in ``metamix.scorers._token_scan``; this module turns the boundaries into
a token table. Token identity is a 64-bit hash of all of the token's bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pyarrow as pa

from metamix.scorers._charclass import (
    ASCII_FLAGS,
    ByteClasses,
    byte_classes,
    utf8_buffer,
)
from metamix.scorers._token_kernels import token_attributes
from metamix.scorers._token_scan import scan_token_starts


@dataclass(frozen=True)
class Tokens:
    """Word tokens of every row of a string array, in row order."""

    row: np.ndarray  # int64 row of each token, non-decreasing
    start: np.ndarray  # byte offsets into ``data``
    end: np.ndarray
    hash: np.ndarray  # int64 identity of the token text
    n_chars: np.ndarray  # int64 code points
    has_alpha: np.ndarray  # bool: contains an alphabetic character
    non_symbol: np.ndarray  # bool: contains a character outside datatrove's PUNCTUATION_SET
    is_sentence_end: np.ndarray  # bool: a single sentence-ending character
    is_punct: np.ndarray  # bool: only Unicode punctuation (spaCy's is_punct)
    data: np.ndarray  # the padded UTF-8 bytes

    def __len__(self) -> int:
        return int(self.row.size)

    @cached_property
    def length_prefix(self) -> np.ndarray:
        return np.concatenate(([0], np.cumsum(self.n_chars)))

    def texts(self) -> list[str]:
        """Token strings (tests and debugging only)."""
        raw = self.data.tobytes()
        return [raw[s:e].decode("utf-8") for s, e in zip(self.start, self.end, strict=True)]


def tokenize_bytes(strings: pa.Array) -> Tokens:
    """spaCy-like tokens of every string in ``strings`` (a non-null Arrow string array)."""
    return _tokenize(*utf8_buffer(strings))


def tokenize_buffer(
    data: np.ndarray, size: int, offsets: np.ndarray, classes: ByteClasses | None = None
) -> Tokens:
    """``tokenize_bytes`` on the output of ``utf8_buffer`` (read-only use of ``data``)."""
    return _tokenize(data, size, offsets, classes)


def _empty_tokens(data: np.ndarray) -> Tokens:
    none = np.zeros(0, dtype=np.int64)
    no = np.zeros(0, dtype=bool)
    return Tokens(none, none, none, none, none, no, no, no, no, data)


def _tokenize(
    data: np.ndarray, size: int, offsets: np.ndarray, classes: ByteClasses | None = None
) -> Tokens:
    if size == 0:
        return _empty_tokens(data)
    classes = classes if classes is not None else byte_classes(data, size)
    token_start, token_chunk, chunk_ends, chunk_row = scan_token_starts(
        data, size, offsets, classes.space, classes.leads, classes.lead_flags, ASCII_FLAGS
    )
    if token_start.size == 0:
        return _empty_tokens(data)
    following = np.r_[token_start[1:], size]
    token_end = np.minimum(following, chunk_ends[token_chunk])
    return _token_table(data, chunk_row[token_chunk], token_start, token_end, classes)


def _token_table(
    data: np.ndarray, row: np.ndarray, start: np.ndarray, end: np.ndarray, classes: ByteClasses
) -> Tokens:
    """Per-token attributes (one numba scan over the tokens' bytes)."""
    hashes, n_chars, has_alpha, non_symbol, is_punct, is_sentence_end = token_attributes(
        data, start, end, classes.leads, classes.lead_flags
    )
    return Tokens(
        row=row,
        start=start,
        end=end,
        hash=hashes.view(np.int64),
        n_chars=n_chars,
        has_alpha=has_alpha,
        non_symbol=non_symbol,
        is_sentence_end=is_sentence_end,
        is_punct=is_punct,
        data=data,
    )
