"""64-bit identities of byte spans (word tokens, normalized words, special-case lookups).

A span's hash mixes its first, middle and last 8 bytes and its length, which covers every
byte of spans up to 24 bytes (nearly every word); longer spans (URLs, identifiers) fold
in every 8-byte word, so two spans that differ anywhere get different hashes (up to 64-bit
collisions). One numba loop over the spans replaces a dozen numpy gathers and temporaries.
"""

from __future__ import annotations

import numpy as np

from metamix.scorers._jit import jit

_K_LENGTH = np.uint64(0x9E3779B97F4A7C15)
_K_TAIL = np.uint64(0xBF58476D1CE4E5B9)
_K_MIDDLE = np.uint64(0x94D049BB133111EB)


@jit
def _load_word(padded: np.ndarray, at: int, n_bytes: int) -> np.uint64:
    """The ``n_bytes`` (<= 8) bytes at ``at`` as a little-endian integer."""
    word = np.uint64(0)
    for k in range(n_bytes):
        word |= np.uint64(padded[at + k]) << np.uint64(8 * k)
    return word


@jit
def _hash_one(padded: np.ndarray, start: int, end: int) -> np.uint64:
    length = end - start
    h = _load_word(padded, start, min(length, 8))
    h = (h + np.uint64(length)) * _K_LENGTH
    if length > 8:
        tail = _load_word(padded, end - 8, 8) * _K_TAIL
        if length <= 24:  # first, middle and last 8 bytes cover every byte
            if length > 16:
                tail ^= _load_word(padded, start + (length - 8) // 2, 8) * _K_MIDDLE
        else:  # fold every 8-byte word between the first and the last, in order
            middle = np.uint64(0)
            for at in range(start + 8, end - 8, 8):
                middle = (middle ^ _load_word(padded, at, 8)) * _K_MIDDLE
                middle ^= middle >> np.uint64(29)
            tail ^= middle
        h ^= tail + (h >> np.uint64(31))
    return h ^ (h >> np.uint64(29))


@jit
def _hash_spans_kernel(padded: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    out = np.empty(starts.size, np.uint64)
    for i in range(starts.size):
        out[i] = _hash_one(padded, starts[i], ends[i])
    return out


def hash_spans(padded: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """int64 hashes of the byte spans ``[starts, ends)`` of ``padded`` (which has at least
    8 zero bytes past the data)."""
    return _hash_spans_kernel(padded, starts, ends).view(np.int64)


def token_hash(token: str) -> int:
    """The hash a token with this text gets (for stop-word and special-case lookups)."""
    raw = token.encode("utf-8")
    data = np.frombuffer(raw + b"\0" * 16, dtype=np.uint8)
    return int(hash_spans(data, np.array([0], np.int64), np.array([len(raw)], np.int64))[0])
