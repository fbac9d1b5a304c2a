"""Character classes over raw UTF-8 bytes, shared by the tokenizer and the RedPajama signals.

Every character gets a bit set of flags (space, word, letter case, spaCy affix classes,
datatrove's punctuation sets...). ASCII flags come from a 128-entry table; the few
non-ASCII characters of a batch are decoded once and looked up (cached per code point).
``ByteClasses`` holds one batch's byte masks and non-ASCII characters.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from metamix.scorers._charsets import PUNCTUATION_SET
from metamix.scorers._spacy_rules import (
    SENTENCE_END_CHARS,
    SPACY_CURRENCY,
    SPACY_PUNCT,
    SPACY_QUOTES,
)

# --- per-character flags -----------------------------------------------------------------
SPACE, WORD, ALPHA, LOWER, UPPER, DIGIT = 1, 2, 4, 8, 16, 32
PREFIX, SUFFIX, ICON, QUOTE, PUNCT_LIST, HYPHEN = 64, 128, 256, 512, 1024, 2048
SENTENCE_END, UNICODE_PUNCT, SYMBOL_SET, NUMERIC = 4096, 8192, 16384, 32768

def char_flags(ch: str) -> int:
    """Flags of one character (used to build the ASCII table and, lazily, for others)."""
    flags = 0
    category = unicodedata.category(ch)
    if ch.isspace():
        flags |= SPACE
    if ch.isalpha():
        flags |= ALPHA | WORD
        flags |= LOWER if ch.islower() else 0
        flags |= UPPER if ch.isupper() else 0
    if category[0] in "NM":
        flags |= WORD
    if ch in "0123456789":
        flags |= DIGIT
    if ch in SPACY_PUNCT or ch in SPACY_QUOTES:
        flags |= PREFIX | SUFFIX
    if ch in SPACY_CURRENCY or ch in "§%=":
        flags |= PREFIX
    if ch in "—–":
        flags |= PREFIX | SUFFIX | HYPHEN
    if category == "So":
        flags |= ICON | PREFIX | SUFFIX
    flags |= QUOTE if ch in SPACY_QUOTES else 0
    flags |= PUNCT_LIST if ch in SPACY_PUNCT else 0
    flags |= HYPHEN if ch in "-~" else 0
    flags |= SENTENCE_END if ch in SENTENCE_END_CHARS else 0
    flags |= UNICODE_PUNCT if category[0] == "P" else 0
    flags |= SYMBOL_SET if ch in PUNCTUATION_SET else 0
    flags |= NUMERIC if ch.isnumeric() else 0
    if not flags & (WORD | SPACE) and category[0] not in "PSCZ":
        flags |= WORD
    return flags


ASCII_FLAGS = np.array([char_flags(chr(i)) for i in range(128)], dtype=np.int32)


def ascii_has(flags: int, extra: bytes = b"") -> np.ndarray:
    """0/1 per ASCII byte: has any of ``flags`` (or is one of ``extra``). Kernels add these
    instead of branching, since character classes alternate unpredictably in text."""
    table = ((ASCII_FLAGS & flags) != 0).astype(np.int64)
    table[np.frombuffer(extra, np.uint8)] = 1
    return table

def per_code_point(code_points: np.ndarray, fn: Callable[[str], int], cache: dict[int, int],
                   dtype: type = np.int32) -> np.ndarray:
    """``fn`` of each code point, computed once per distinct code point ever seen (a batch
    repeats few distinct characters); surrogates and out-of-range values map to 0."""
    unique, inverse = np.unique(code_points, return_inverse=True)
    values = np.empty(unique.size, dtype=dtype)
    for index, cp in enumerate(unique.tolist()):
        value = cache.get(cp)
        if value is None:
            value = fn(chr(cp)) if cp < 0x110000 and not 0xD800 <= cp < 0xE000 else 0
            cache[cp] = value
        values[index] = value
    return values[inverse]


_non_ascii_cache: dict[int, int] = {}


def _flags_of_code_points(code_points: np.ndarray) -> np.ndarray:
    return per_code_point(code_points, char_flags, _non_ascii_cache)


def utf8_buffer(strings: pa.Array) -> tuple[np.ndarray, int, np.ndarray]:
    """The UTF-8 bytes of a non-null Arrow string array, zero-padded by 16 bytes (so 8-byte
    reads past any position are safe), their length, and each row's byte offsets."""
    if pa.types.is_large_string(strings.type):
        strings = strings.cast(pa.string())
    if len(strings) == 0:
        return np.zeros(16, dtype=np.uint8), 0, np.zeros(1, dtype=np.int64)
    offsets = np.frombuffer(strings.buffers()[1], dtype=np.int32)[
        strings.offset : strings.offset + len(strings) + 1
    ].astype(np.int64)
    data_buffer = strings.buffers()[2]
    raw = np.frombuffer(data_buffer, np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    base = int(offsets[0])
    size = int(offsets[-1] - base)
    data = np.zeros(size + 16, dtype=np.uint8)
    data[:size] = raw[base : base + size]
    return data, size, offsets - base


def decode_leads(
    data: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Positions, byte lengths, code points and flags of every non-ASCII character."""
    b = data[:size]
    leads = np.flatnonzero(b >= 0xC0)
    lead_len = np.where(b[leads] >= 0xF0, 4, np.where(b[leads] >= 0xE0, 3, 2))
    if leads.size == 0:
        return leads, lead_len, np.zeros(0, np.int64), np.zeros(0, np.int32)
    code_points = _decode(data, leads, lead_len)
    return leads, lead_len, code_points, _flags_of_code_points(code_points)


def mark_chars(size: int, leads: np.ndarray, lead_len: np.ndarray, which: np.ndarray) -> np.ndarray:
    """Byte mask covering every byte of the non-ASCII characters selected by ``which``."""
    mask = np.zeros(size, dtype=bool)
    for extra in range(4):
        chosen = which & (lead_len > extra)
        mask[np.minimum(leads[chosen] + extra, size - 1)] = True
    return mask


@dataclass(frozen=True)
class ByteClasses:
    """Byte-level character classes of a UTF-8 buffer, shared by the tokenizer and the
    RedPajama signals (computed once per batch)."""

    space: np.ndarray  # bool per byte: part of a whitespace character
    letter: np.ndarray  # bool per byte: ASCII letter
    digit: np.ndarray  # bool per byte: ASCII digit
    leads: np.ndarray  # positions of non-ASCII characters
    lead_len: np.ndarray  # their byte lengths
    code_points: np.ndarray  # their code points
    lead_flags: np.ndarray  # their flags


def byte_classes(data: np.ndarray, size: int) -> ByteClasses:
    b = data[:size]
    leads, lead_len, code_points, lead_flags = decode_leads(data, size)
    space = (b == 32) | ((b - np.uint8(9)) < 5) | ((b - np.uint8(28)) < 4)
    if leads.size:
        space |= mark_chars(size, leads, lead_len, (lead_flags & SPACE).astype(bool))
    letter = ((b | np.uint8(0x20)) - np.uint8(97)) < 26
    digit = (b - np.uint8(48)) < 10
    return ByteClasses(space, letter, digit, leads, lead_len, code_points, lead_flags)


def _decode(data: np.ndarray, leads: np.ndarray, lead_len: np.ndarray) -> np.ndarray:
    b0 = data[leads].astype(np.int64)
    b1 = data[leads + 1].astype(np.int64) & 0x3F
    b2 = data[leads + 2].astype(np.int64) & 0x3F
    b3 = data[leads + 3].astype(np.int64) & 0x3F
    two = ((b0 & 0x1F) << 6) | b1
    three = ((b0 & 0x0F) << 12) | (b1 << 6) | b2
    four = ((b0 & 0x07) << 18) | (b1 << 12) | (b2 << 6) | b3
    return np.where(lead_len == 2, two, np.where(lead_len == 3, three, four))


