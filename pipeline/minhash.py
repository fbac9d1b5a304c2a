"""MinHash signatures of word n-gram sets and LSH banding, vectorized with numba.

``datasketch`` hashes every shingle through Python (a few hundred long documents per second
per core on the demo, ``bench/dedup.py``); here a batch's words come from one Arrow regex
split, and numba kernels hash words (FNV-1a over their UTF-8 bytes), chain them into
shingle hashes and take each permutation's minimum, so the per-document cost is a few
multiply-adds per shingle and permutation.

Text is simplified as datatrove's MinHash dedup does it (lower case, numbers as ``0``,
no diacritics), and words are maximal runs of letters and digits (any script; punctuation
and spacing differences do not matter). A document with fewer words than ``ngram`` is one
shingle; one with no word has no signature and never joins a cluster. Permutations are
``(a * h + b) mod (2^61 - 1)`` with ``a, b`` drawn from the seed, so signatures are a
function of the text, the parameters and the seed.

Two documents are candidates when any of ``bands`` groups of ``rows`` signature values
agrees. ``lsh_params`` picks the most rows per band for which a pair at the Jaccard
threshold is still a candidate with probability >= 99%; each candidate pair is then
verified on the whole signature: it is a duplicate when the share of agreeing values (an
unbiased estimate of its Jaccard similarity) is at least the threshold minus two standard
errors, so a pair at the threshold passes with ~98% probability and pairs well below it
do not. Clusters are the connected components of verified pairs (as datatrove's MinHash
dedup forms them from its bucket matches). datasketch's balanced banding
(``optimal_bands``) finds a pair at the threshold only ~40% of the time at 128
permutations: cheaper, but which borderline pairs it finds is a coin toss.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_WORD_SEPARATORS = r"[^\p{L}\p{N}]+"
_NUMBER = r"\p{Nd}+(?:[.,\x{066B}\x{060C}]\p{Nd}+)?"
_MERSENNE = np.uint64((1 << 61) - 1)
_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
#: a signature value no permutation reaches: documents without words
EMPTY = np.uint32(0xFFFFFFFF)


def lsh_params(threshold: float, num_perm: int, recall: float = 0.99
               ) -> tuple[int, int, float]:
    """(bands, rows, min_agreement): the most rows per band (fewest chance candidates) that
    still make a pair at ``threshold`` a candidate with probability >= ``recall``, and the
    verification bar, ``threshold`` minus two standard errors of the Jaccard estimate."""
    rows = 1
    for r in range(num_perm, 0, -1):
        if 1 - (1 - threshold ** r) ** (num_perm // r) >= recall:
            rows = r
            break
    bar = threshold - 2 * float(np.sqrt(threshold * (1 - threshold) / num_perm))
    return num_perm // rows, rows, bar


def optimal_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) whose S-curve ``1 - (1 - s^rows)^bands`` best separates Jaccard
    similarities below and above ``threshold`` (equal false-positive/negative weights)."""
    best, best_err = (1, num_perm), float("inf")
    grid_lo = np.linspace(0.0, threshold, 201)
    grid_hi = np.linspace(threshold, 1.0, 201)
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):
            fp = np.trapezoid(1 - (1 - grid_lo ** rows) ** bands, grid_lo)
            fn = np.trapezoid((1 - grid_hi ** rows) ** bands, grid_hi)
            if fp + fn < best_err:
                best, best_err = (bands, rows), fp + fn
    return best


@numba.njit(cache=True, nogil=True)
def _word_hashes(list_offsets: np.ndarray, str_offsets: np.ndarray, data: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """FNV-1a 64 of every non-empty word, and each document's range in that array."""
    n_docs = len(list_offsets) - 1
    hashes = np.empty(len(str_offsets) - 1, dtype=np.uint64)
    doc_offsets = np.zeros(n_docs + 1, dtype=np.int64)
    n = 0
    for d in range(n_docs):
        for w in range(list_offsets[d], list_offsets[d + 1]):
            start, end = str_offsets[w], str_offsets[w + 1]
            if end == start:
                continue
            h = _FNV_OFFSET
            for i in range(start, end):
                h = (h ^ np.uint64(data[i])) * _FNV_PRIME
            hashes[n] = h
            n += 1
        doc_offsets[d + 1] = n
    return hashes[:n], doc_offsets


@numba.njit(cache=True, nogil=True)
def _signatures(doc_offsets: np.ndarray, words: np.ndarray, a: np.ndarray, b: np.ndarray,
                ngram: int) -> np.ndarray:
    n_docs, num_perm = len(doc_offsets) - 1, len(a)
    out = np.full((n_docs, num_perm), np.uint64(0xFFFFFFFF), dtype=np.uint64)
    mask32 = np.uint64(0xFFFFFFFF)
    for d in range(n_docs):
        start, end = doc_offsets[d], doc_offsets[d + 1]
        if end == start:
            continue
        n_shingles = max(end - start - ngram + 1, 1)
        width = min(ngram, end - start)
        sig = out[d]
        for s in range(start, start + n_shingles):
            h = _FNV_OFFSET
            for k in range(s, s + width):
                h = (h ^ words[k]) * _FNV_PRIME
            h32 = (h >> np.uint64(32)) ^ (h & mask32)
            for p in range(num_perm):
                x = a[p] * h32 + b[p]
                x = (x & _MERSENNE) + (x >> np.uint64(61))
                x = (x & _MERSENNE) + (x >> np.uint64(61))
                x &= mask32
                if x < sig[p]:
                    sig[p] = x
    return out


@numba.njit(cache=True, nogil=True)
def band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    keys = np.empty((sig.shape[0], bands), dtype=np.uint64)
    for d in range(sig.shape[0]):
        for band in range(bands):
            h = _FNV_OFFSET ^ np.uint64(band)
            for r in range(band * rows, (band + 1) * rows):
                h = (h ^ np.uint64(sig[d, r])) * _FNV_PRIME
            keys[d, band] = h
    return keys


def simplify(texts: pa.Array) -> pa.Array:
    """datatrove's ``simplify_text`` as Arrow kernels: lower case, every number as ``0``,
    diacritics dropped (NFD without combining marks); words are then split on anything
    that is not a letter or digit."""
    text = pc.utf8_lower(texts.cast(pa.large_string()).fill_null(""))
    text = pc.replace_substring_regex(text, _NUMBER, "0")
    return pc.replace_substring_regex(pc.utf8_normalize(text, "NFD"), r"\p{Mn}+", "")


def _string_buffers(words: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(value offsets, UTF-8 bytes) of a large_string array, as numpy views."""
    _, offsets_buf, data_buf = words.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[words.offset:
                                                          words.offset + len(words) + 1]
    data = (np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None
            else np.zeros(0, dtype=np.uint8))
    return offsets, data


@dataclass(frozen=True)
class MinHasher:
    """Signatures of documents' word ``ngram`` sets under ``num_perm`` seeded permutations."""

    num_perm: int = 128
    ngram: int = 5
    seed: int = 0

    def _permutations(self) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        a = rng.integers(1, 1 << 32, size=self.num_perm, dtype=np.uint64)
        b = rng.integers(0, 1 << 32, size=self.num_perm, dtype=np.uint64)
        return a, b

    def signatures(self, texts: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """uint32 ``(len(texts), num_perm)``; a row of ``EMPTY`` for a text without words."""
        if isinstance(texts, pa.ChunkedArray):
            texts = texts.combine_chunks()
        split = pc.split_pattern_regex(simplify(texts), _WORD_SEPARATORS)
        list_offsets = split.offsets.to_numpy().astype(np.int64)
        str_offsets, data = _string_buffers(split.values)
        words, doc_offsets = _word_hashes(list_offsets - list_offsets[0],
                                          str_offsets[list_offsets[0]:], data)
        a, b = self._permutations()
        return _signatures(doc_offsets, words, a, b, self.ngram).astype(np.uint32)


#: Candidate pairs whose signatures are compared at once (bounds the agreement check's memory).
_AGREEMENT_CHUNK = 65_536


def lsh_clusters(signatures: np.ndarray, bands: int, rows: int,
                 min_agreement: float = 0.0, same_as: np.ndarray | None = None) -> np.ndarray:
    """Component label per document (documents without words are alone); labels are the
    smallest member index, so the first document of a cluster is its representative.
    ``same_as`` (index of an equal document per document, e.g. exact duplicates) adds
    edges, so documents equal by another measure always share a cluster."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = signatures.shape[0]
    has_words = ~np.all(signatures == EMPTY, axis=1)
    keys = band_keys(np.ascontiguousarray(signatures), bands, rows)
    src: list[np.ndarray] = []
    dst: list[np.ndarray] = []
    candidates = np.flatnonzero(has_words)
    for band in range(bands):
        keys_of_band = keys[candidates, band]
        order = np.argsort(keys_of_band, kind="stable")
        same = keys_of_band[order[1:]] == keys_of_band[order[:-1]]
        src.append(candidates[order[1:][same]])
        dst.append(candidates[order[:-1][same]])
    edges_src = np.concatenate(src) if src else np.zeros(0, dtype=np.int64)
    edges_dst = np.concatenate(dst) if dst else np.zeros(0, dtype=np.int64)
    if len(edges_src):   # a pair found by several bands is one edge
        pairs = np.unique(np.minimum(edges_src, edges_dst) * max(n, 1)
                          + np.maximum(edges_src, edges_dst))
        edges_src, edges_dst = pairs // max(n, 1), pairs % max(n, 1)
    if min_agreement > 0 and len(edges_src):
        # in chunks: two gathered signature rows per edge would be ~2 KB x edges at once
        # (GBs on a corpus with many duplicates)
        keep = np.empty(len(edges_src), dtype=bool)
        for start in range(0, len(edges_src), _AGREEMENT_CHUNK):
            part = slice(start, start + _AGREEMENT_CHUNK)
            agreement = (signatures[edges_src[part]] == signatures[edges_dst[part]]).mean(axis=1)
            keep[part] = agreement >= min_agreement
        edges_src, edges_dst = edges_src[keep], edges_dst[keep]
    if same_as is not None:
        linked = np.flatnonzero(same_as != np.arange(n))
        edges_src = np.concatenate([edges_src, linked])
        edges_dst = np.concatenate([edges_dst, same_as[linked]])
    graph = coo_matrix((np.ones(len(edges_src), dtype=np.int8), (edges_src, edges_dst)),
                       shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    first = np.full(labels.max() + 1 if n else 0, n, dtype=np.int64)
    np.minimum.at(first, labels, np.arange(n))
    return first[labels]
