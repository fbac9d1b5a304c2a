"""Repeated word n-grams and per-row word counts, grouped with a hash table.

Gopher repetition needs, for every n from 2 to 10, which n-grams of a document repeat;
RedPajama needs the same for 2- and 3-grams of its own words and the size of every group
of equal words. Grouping by sorting 64-bit keys costs one sort per n; an open-addressing
hash table per row (numba kernel) groups them in one linear pass.

An n-gram's identity is a 64-bit hash of its row and tokens (collisions are negligible at
the sizes of a batch). Longer n-grams are only looked for where both of their
(n-1)-grams repeat, and their identity extends the (n-1)-gram's by one token.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metamix.scorers._jit import jit

_ROW_SEED = np.uint64(0x9E3779B97F4A7C15)
_FNV_PRIME = np.uint64(0x100000001B3)


@dataclass(frozen=True)
class Repeats:
    """Word n-grams that occur at least twice in their row.

    ``positions`` are the start positions of every occurrence of such an n-gram, in
    ascending order; ``count`` is how often that n-gram occurs in its row, ``is_first``
    marks its first occurrence and ``keys`` is the n-gram's 64-bit identity. Positions not
    listed start an n-gram that occurs once.
    """

    n: int
    positions: np.ndarray
    count: np.ndarray
    is_first: np.ndarray
    keys: np.ndarray


@jit
def _mix(key: np.uint64, value: np.uint64) -> np.uint64:
    """Fold ``value`` into ``key`` (wrapping 64-bit arithmetic)."""
    mixed = (key ^ value) * _FNV_PRIME
    return mixed ^ (mixed >> np.uint64(32))


@jit
def _group(keys: np.ndarray, item_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group id of every key (numbered by first appearance) and each group's size.

    Keys only ever match within their row (``item_rows``, non-decreasing), so each row gets
    its own small table: it stays in cache, where one table for the whole batch would
    miss on nearly every probe.
    """
    m = keys.size
    longest = 0
    a = 0
    for i in range(1, m + 1):
        if i == m or item_rows[i] != item_rows[a]:
            longest = max(longest, i - a)
            a = i
    capacity = 16
    while capacity < 2 * longest:
        capacity *= 2
    slot_key = np.empty(capacity, np.uint64)
    slot_group = np.empty(capacity, np.int64)
    group_of = np.empty(m, np.int64)
    sizes = np.zeros(m, np.int64)
    n_groups = 0
    a = 0
    while a < m:
        b = a + 1
        while b < m and item_rows[b] == item_rows[a]:
            b += 1
        table_size = 16
        while table_size < 2 * (b - a):
            table_size *= 2
        mask = np.uint64(table_size - 1)
        slot_group[:table_size] = -1
        for i in range(a, b):
            key = keys[i]
            slot = (key ^ (key >> np.uint64(29))) & mask
            while True:
                group = slot_group[slot]
                if group < 0:
                    slot_key[slot] = key
                    slot_group[slot] = n_groups
                    group = n_groups
                    n_groups += 1
                    break
                if slot_key[slot] == key:
                    break
                slot = (slot + np.uint64(1)) & mask
            group_of[i] = group
            sizes[group] += 1
        a = b
    return group_of, sizes[:n_groups]


def group_ids_within_rows(keys: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Dense ids of equal keys within each row (``rows`` non-decreasing), numbered by first
    appearance across the batch; equal keys in different rows get different ids."""
    if keys.size == 0:
        return np.zeros(0, np.int64)
    return _group(np.ascontiguousarray(keys).view(np.uint64), rows)[0]


@jit
def _ngram_candidates(
    token_hash: np.ndarray,
    token_row: np.ndarray,
    n: int,
    shorter_positions: np.ndarray,
    shorter_keys: np.ndarray,
    use_shorter: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Start positions of the n-grams that may repeat (inside one row; with ``use_shorter``,
    both (n-1)-grams repeat) and their identities."""
    size = token_hash.size
    last_start = size - n
    positions = np.empty(max(last_start + 1, 0), np.int64)
    keys = np.empty(max(last_start + 1, 0), np.uint64)
    m = 0
    if use_shorter:
        # both (n-1)-grams repeat: p and p + 1 are consecutive entries of the sorted list
        for i in range(shorter_positions.size - 1):
            p = shorter_positions[i]
            if (
                shorter_positions[i + 1] == p + 1
                and p <= last_start
                and token_row[p] == token_row[p + n - 1]
            ):
                positions[m] = p
                keys[m] = _mix(shorter_keys[i], np.uint64(token_hash[p + n - 1]))
                m += 1
    else:
        for p in range(last_start + 1):
            if token_row[p] != token_row[p + n - 1]:
                continue
            key = (np.uint64(token_row[p]) + np.uint64(1)) * _ROW_SEED
            for offset in range(n):
                key = _mix(key, np.uint64(token_hash[p + offset]))
            positions[m] = p
            keys[m] = key
            m += 1
    return positions[:m], keys[:m]


def repeated_ngrams(
    token_hash: np.ndarray,
    token_row: np.ndarray,
    n: int,
    shorter: Repeats | None = None,
) -> Repeats:
    """The repeated n-grams of every row, from ``shorter`` (the repeats of the (n-1)-grams)
    when given."""
    use_shorter = shorter is not None and shorter.n == n - 1
    none = np.zeros(0, np.int64)
    positions, keys = _ngram_candidates(
        token_hash,
        token_row,
        n,
        shorter.positions if use_shorter else none,
        shorter.keys if use_shorter else np.zeros(0, np.uint64),
        use_shorter,
    )
    if positions.size == 0:
        return Repeats(n, none, none, np.zeros(0, bool), np.zeros(0, np.uint64))
    group_of, sizes = _group(keys, token_row[positions])
    return Repeats(n, *_keep_repeated(positions, keys, group_of, sizes))


@jit
def _keep_repeated(
    positions: np.ndarray, keys: np.ndarray, group_of: np.ndarray, sizes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The positions whose group has 2+ members, with group size, first-member flag and
    key (groups are numbered by first appearance, in position order)."""
    m = 0
    for i in range(positions.size):
        if sizes[group_of[i]] > 1:
            m += 1
    kept_positions = np.empty(m, np.int64)
    count = np.empty(m, np.int64)
    is_first = np.empty(m, np.bool_)
    kept_keys = np.empty(m, np.uint64)
    seen = 0
    m = 0
    for i in range(positions.size):
        group = group_of[i]
        first = group >= seen
        if first:
            seen = group + 1
        if sizes[group] > 1:
            kept_positions[m] = positions[i]
            count[m] = sizes[group]
            is_first[m] = first
            kept_keys[m] = keys[i]
            m += 1
    return kept_positions, count, is_first, kept_keys


@jit
def _row_keys(token_hash: np.ndarray, token_row: np.ndarray) -> np.ndarray:
    keys = np.empty(token_hash.size, np.uint64)
    for i in range(token_hash.size):
        seed = (np.uint64(token_row[i]) + np.uint64(1)) * _ROW_SEED
        keys[i] = _mix(seed, np.uint64(token_hash[i]))
    return keys


def group_sizes_per_row(
    token_hash: np.ndarray, token_row: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Sizes of the groups of equal tokens within each row, and each group's row (groups
    in order of first appearance)."""
    if token_hash.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    group_of, sizes = _group(_row_keys(token_hash, token_row), token_row)
    first_item = np.zeros(sizes.size, np.int64)
    first_item[group_of[::-1]] = np.arange(group_of.size - 1, -1, -1)
    return sizes, token_row[first_item]


def top_ngram_per_row(
    repeats: Repeats, token_row: np.ndarray, n_rows: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: start position and count of the most frequent repeated n-gram, the
    earliest-starting one among equals (``Counter.most_common`` order); -1 and 0 for rows
    without a repeated n-gram."""
    top_position = np.full(n_rows, -1, dtype=np.int64)
    top_count = np.zeros(n_rows, dtype=np.int64)
    firsts = repeats.positions[repeats.is_first]
    if firsts.size == 0:
        return top_position, top_count
    counts = repeats.count[repeats.is_first]
    rows = token_row[firsts]
    _top_per_row(firsts, counts, rows, top_position, top_count)
    return top_position, top_count


@jit
def _top_per_row(
    firsts: np.ndarray,
    counts: np.ndarray,
    rows: np.ndarray,
    top_position: np.ndarray,
    top_count: np.ndarray,
) -> None:
    """``firsts`` ascend, so the first n-gram reaching a row's highest count wins ties."""
    for i in range(firsts.size):
        row = rows[i]
        if counts[i] > top_count[row]:
            top_count[row] = counts[i]
            top_position[row] = firsts[i]
