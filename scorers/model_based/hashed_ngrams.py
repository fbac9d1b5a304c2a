"""Hashed word unigram+bigram features for a whole batch, in Arrow kernels and numpy.

DSIR (Xie et al. 2023) represents a document as counts of hashed unigrams and bigrams of
its lowercased ``wordpunct`` tokens (runs of word characters, or runs of other non-space
characters). We tokenize a batch with one RE2 rewrite (surround each token with spaces)
and one whitespace split, then hash every token's UTF-8 bytes with a polynomial hash
computed by ``np.add.reduceat``: no Python call per token or per document, and the hash
is the same in every process (Python's ``hash`` of str is salted per process).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_WORDPUNCT = r"[\pL\pN\pM_]+|[^\pL\pN\pM_\s]+"
_BASE = np.uint64(0x100000001B3)  # FNV-64 prime as the polynomial base
_MIX = np.uint64(0x9E3779B97F4A7C15)
_BIGRAM_SALT = np.uint64(0xD6E8FEB86659FD93)


@dataclass(frozen=True)
class BatchFeatures:
    """Hashed feature ids (bucket numbers) with the row each came from."""

    buckets: np.ndarray  # int64 in [0, n_buckets)
    rows: np.ndarray  # int64 row index, non-decreasing
    n_rows: int

    def counts_per_row(self) -> np.ndarray:
        return np.bincount(self.rows, minlength=self.n_rows).astype(np.int64)


def wordpunct_tokens(texts: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Lowercased wordpunct tokens of every text, flattened, with their row indices."""
    spaced = pc.replace_substring_regex(pc.utf8_lower(texts), _WORDPUNCT, r" \0 ")
    lists = pc.utf8_split_whitespace(spaced)
    tokens = pc.list_flatten(lists)
    rows = pc.list_parent_indices(lists).to_numpy().astype(np.int64)
    keep = pc.greater(pc.binary_length(tokens), 0)
    return tokens.filter(keep), rows[keep.to_numpy(zero_copy_only=False)]


def hash_strings(strings: pa.Array) -> np.ndarray:
    """A 64-bit hash of each (non-empty) string's UTF-8 bytes, identical across processes."""
    n = len(strings)
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    strings = strings.cast(pa.large_string())
    offsets = np.frombuffer(strings.buffers()[1], dtype=np.int64)[
        strings.offset : strings.offset + n + 1
    ]
    data = np.frombuffer(strings.buffers()[2], dtype=np.uint8)
    lengths = np.diff(offsets)
    if np.any(lengths <= 0):
        raise ValueError("hash_strings needs non-empty strings")
    first, last = int(offsets[0]), int(offsets[-1])
    values = data[first:last].astype(np.uint64) + np.uint64(1)
    # h = sum_j (byte_j + 1) * BASE**(len - 1 - j)  (mod 2**64)
    powers = np.cumprod(np.full(int(lengths.max()), _BASE, dtype=np.uint64))
    powers = np.concatenate(([np.uint64(1)], powers[:-1]))
    ends = np.repeat(offsets[1:] - first, lengths)
    exponent = ends - 1 - np.arange(last - first)
    with np.errstate(over="ignore"):
        h = np.add.reduceat(values * powers[exponent], offsets[:-1] - first)
        h = h + lengths.astype(np.uint64)
    return _finalize(h)


def _finalize(h: np.ndarray) -> np.ndarray:
    """splitmix-style avalanche, so bucketing by modulo uses every input bit."""
    with np.errstate(over="ignore"):
        h = h ^ (h >> np.uint64(31))
        h = h * _MIX
        h = h ^ (h >> np.uint64(29))
        h = h * np.uint64(0xBF58476D1CE4E5B9)
        return h ^ (h >> np.uint64(32))


def hashed_unigram_bigram_features(texts: pa.Array, n_buckets: int) -> BatchFeatures:
    """Bucket ids of every unigram and every within-document bigram of every text."""
    tokens, rows = wordpunct_tokens(texts)
    h = hash_strings(tokens)
    same_doc = rows[1:] == rows[:-1]
    with np.errstate(over="ignore"):
        bigrams = _finalize(h[:-1][same_doc] * _BIGRAM_SALT + h[1:][same_doc])
    all_hashes = np.concatenate([h, bigrams])
    all_rows = np.concatenate([rows, rows[1:][same_doc]])
    order = np.argsort(all_rows, kind="stable")
    buckets = (all_hashes[order] % np.uint64(n_buckets)).astype(np.int64)
    return BatchFeatures(buckets, all_rows[order], len(texts))
