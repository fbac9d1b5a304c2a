"""The word splitter's boundary scan as one compiled pass over a batch's UTF-8 bytes.

spaCy's English rules (see ``metamix.scorers._tokens``) only ever look at a punctuation character
and its neighbours inside one whitespace chunk. Walking chunk by chunk keeps those
neighbours in cache and needs no batch-length temporaries; as chained numpy passes the
same rules cost a third of all heuristic time.

Per chunk: collect the "candidates" (characters that are neither letters, digits nor
spaces), decide for each whether it is a prefix, suffix or infix split point, add the
contraction splits ("do|n't", "it|'s"), then emit the sorted token starts.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from metamix.scorers._charclass import (
    ALPHA,
    DIGIT,
    HYPHEN,
    ICON,
    LOWER,
    PREFIX,
    PUNCT_LIST,
    QUOTE,
    SPACE,
    SUFFIX,
    UPPER,
    WORD,
    ascii_has,
)
from metamix.scorers._hashing import _hash_one, token_hash
from metamix.scorers._jit import jit, jit_inline
from metamix.scorers._spacy_rules import SPECIAL_TOKENS

_DOT, _PLUS, _MINUS, _COMMA, _COLON, _SLASH, _QUOTE = 46, 43, 45, 44, 58, 47, 39

_ASCII_ALNUM = ascii_has(ALPHA | DIGIT)

# Byte sets the rules test, as bits of one lookup table.
_PCT_DASH, _PCT_PLUS, _ARITHMETIC, _RELATION = 1, 2, 4, 8
_BYTE_RULES = np.zeros(256, np.uint8)
for _bit, _chars in ((_PCT_DASH, b"%-+"), (_PCT_PLUS, b"%+"), (_ARITHMETIC, b"+-*^"),
                     (_RELATION, b":<>=/")):
    _BYTE_RULES[np.frombuffer(_chars, np.uint8)] |= _bit


@jit
def _char_flags(data, size, leads, lead_flags, ascii_flags):  # noqa: ANN001, ANN202
    """Flags of the character starting at each byte (0 on continuation bytes): the rules
    look at a punctuation mark's neighbours, and a binary search of ``leads`` for each
    non-ASCII neighbour was a third of the scan."""
    out = np.zeros(size, np.uint16)
    lead = 0
    for p in range(size):
        byte = data[p]
        if byte < 0x80:
            out[p] = ascii_flags[byte]
        elif byte >= 0xC0:
            out[p] = lead_flags[lead]
            lead += 1
    return out


@jit_inline
def _flags_at(char_flags, pos):  # noqa: ANN001, ANN202
    """Flags of the character starting at ``pos``; 0 outside the buffer or mid-character."""
    if pos < 0 or pos >= char_flags.size:
        return 0
    return char_flags[pos]


@jit_inline
def _prev_start(data, pos):  # noqa: ANN001, ANN202
    """Start of the character before ``pos`` (steps back over continuation bytes)."""
    prev = pos - 1
    for _ in range(3):
        if prev > 0 and (data[prev] & 0xC0) == 0x80:
            prev -= 1
    return prev


@jit_inline
def _is_alnum(byte):  # noqa: ANN001, ANN202
    return byte < 0x80 and _ASCII_ALNUM[byte] == 1


def scan_token_starts(
    data: np.ndarray,
    size: int,
    offsets: np.ndarray,
    space: np.ndarray,
    leads: np.ndarray,
    lead_flags: np.ndarray,
    ascii_flags: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Token starts (sorted) with their chunk index, and each chunk's end and row; 2-3
    tokens that spell a spaCy special case ("):", "e.g.") are already merged.

    The kernel stops when an output or scratch array is too small and says where; the
    arrays grow here and it resumes. (Growing them inside the kernel would make numba
    reference-count every array access in the loop, which costs ~8x.)
    """
    tokens = np.empty((2, size // 2 + 64), np.int64)  # start, chunk
    chunks = np.empty((2, size // 8 + 64), np.int64)  # end, row
    scratch = _Scratch(256)
    state = np.zeros(5, np.int64)  # byte, tokens, chunks, needed tokens, needed scratch
    special_hashes, special_ends = _special_cases()
    char_flags = _char_flags(data, size, leads, lead_flags, ascii_flags)
    while True:
        done = _scan(data, offsets, space, char_flags, special_hashes, special_ends, state,
                     tokens, chunks, *scratch.arrays)
        if done:
            break
        n_tokens, n_chunks, need_tokens, need_scratch = state[1:]
        if need_tokens > tokens.shape[1]:
            tokens = _grown(tokens, n_tokens, need_tokens)
        if n_chunks == chunks.shape[1]:
            chunks = _grown(chunks, n_chunks, n_chunks + 1)
        if need_scratch > scratch.capacity:
            scratch = _Scratch(int(need_scratch))
    n_tokens, n_chunks = state[1], state[2]
    return tokens[0, :n_tokens], tokens[1, :n_tokens], chunks[0, :n_chunks], chunks[1, :n_chunks]


@cache
def _special_cases() -> tuple[np.ndarray, np.ndarray]:
    """Sorted hashes of spaCy's special-case strings, and which (first byte, last byte)
    pairs occur among them (a cheap test before hashing a candidate merge)."""
    hashes = np.sort([token_hash(s) for s in SPECIAL_TOKENS]).astype(np.int64)
    special_ends = np.zeros(256 * 256, dtype=np.bool_)
    for text in SPECIAL_TOKENS:
        raw = text.encode("utf-8")
        special_ends[raw[0] * 256 + raw[-1]] = True
    return hashes, special_ends


def _grown(array: np.ndarray, used: int, needed: int) -> np.ndarray:
    bigger = np.empty((array.shape[0], max(int(needed), 2 * array.shape[1])), array.dtype)
    bigger[:, :used] = array[:, :used]
    return bigger


class _Scratch:
    """Per-chunk working arrays, sized for the longest chunk seen."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.arrays = (
            np.empty((2, capacity), np.int64),  # position, next character
            np.empty((3, capacity), np.int32),  # flags, next flags, previous flags
            # prefix ok, suffix ok, infix, in prefix, in suffix, "." continuing / continued
            np.empty((7, capacity), np.bool_),
            np.empty(4 * capacity + 2, np.int64),  # token starts of the chunk
            np.empty((3, 4 * capacity + 2), np.int64),  # lengths before/after a merge, kept
        )


@jit
def _merge_specials(data, starts, m, chunk_end, lengths, special_hashes, special_ends):  # noqa: ANN001, ANN202
    """Merge 2, then 3 adjacent tokens of one chunk that spell a special case (at most 10
    bytes); each width is matched on the tokens as they stand before that width's merges.
    Returns the new token count (``starts`` is compacted in place)."""
    # rows of ``lengths``: length, length after this width's merges, kept (indexed in
    # place: taking row views would reference-count the array on every call)
    for k in range(m):
        lengths[0, k] = (starts[k + 1] if k + 1 < m else chunk_end) - starts[k]
    for width in (2, 3):
        if m < width:
            break
        merged = False
        for k in range(m):
            lengths[1, k] = lengths[0, k]
            lengths[2, k] = 1
        for k in range(m - width + 1):
            total = lengths[0, k]
            for j in range(1, width):
                total += lengths[0, k + j]
            if total > 10:
                continue
            if not special_ends[data[starts[k]] * 256 + data[starts[k] + total - 1]]:
                continue
            key = np.int64(_hash_one(data, starts[k], starts[k] + total))
            where = np.searchsorted(special_hashes, key)
            if where < special_hashes.size and special_hashes[where] == key:
                for j in range(1, width):
                    lengths[2, k + j] = 0
                lengths[1, k] = total
                merged = True
        if merged:
            w = 0
            for k in range(m):
                if lengths[2, k]:
                    starts[w] = starts[k]
                    lengths[0, w] = lengths[1, k]
                    w += 1
            m = w
    return m


@jit
def _scan(data, offsets, space, char_flags, special_hashes, special_ends,  # noqa: ANN001, ANN202
          state, tokens, chunks, positions, flag_rows, marks, starts, lengths):
    """Scan from ``state`` on; True when done, False when an array is too small."""
    size = offsets[-1]
    pos, nxt = positions[0], positions[1]
    flag, nf, pf = flag_rows[0], flag_rows[1], flag_rows[2]
    prefix_ok, suffix_ok, infix = marks[0], marks[1], marks[2]
    in_prefix, in_suffix = marks[3], marks[4]
    dots_before, dots_after = marks[5], marks[6]  # "." of an ellipsis, after / before a "."
    cap = positions.shape[1]
    i, n_tokens, n_chunks = state[0], state[1], state[2]
    row = np.searchsorted(offsets, i, side="right") - 1
    n_rows = offsets.size - 1
    while row < n_rows:
        row_end = offsets[row + 1]
        while i < row_end:
            if space[i]:
                i += 1
                continue
            cs = i
            while i < row_end and not space[i]:
                i += 1
            ce = i
            # a chunk yields at most one token per byte
            if ce - cs > cap or n_chunks == chunks.shape[1] or (
                n_tokens + (ce - cs) > tokens.shape[1]
            ):
                state[0], state[1], state[2] = cs, n_tokens, n_chunks
                state[3] = n_tokens + (ce - cs)
                state[4] = ce - cs
                return False
            chunks[0, n_chunks] = ce
            chunks[1, n_chunks] = row

            # candidates: characters that are neither word characters nor spaces
            n = 0
            for p in range(cs, ce):
                byte = data[p]
                if byte < 0x80:  # stored unconditionally, kept unless alphanumeric
                    pos[n] = p
                    flag[n] = char_flags[p]
                    nxt[n] = p + 1
                    n += 1 - _ASCII_ALNUM[byte]
                elif byte >= 0xC0:
                    f = char_flags[p]
                    if f & (WORD | SPACE) == 0:
                        pos[n] = p
                        flag[n] = f
                        nxt[n] = p + (4 if byte >= 0xF0 else 3 if byte >= 0xE0 else 2)
                        n += 1

            n_starts = 1
            starts[0] = cs
            if n > 0:
                url = size > 3 and cs < size - 3 and data[cs] == 119 and data[cs + 1] == 119
                url = url and data[cs + 2] == 119 and data[cs + 3] == _DOT
                for k in range(n):
                    p = pos[k]
                    f = flag[k]
                    byte = data[p]
                    has_next = nxt[k] < ce
                    nf[k] = (
                        _flags_at(char_flags, nxt[k])
                        if has_next
                        else 0
                    )
                    has_prev = p > cs
                    prev_pos = _prev_start(data, p)
                    pf[k] = (
                        _flags_at(char_flags, max(prev_pos, 0))
                        if has_prev
                        else 0
                    )
                    pfk, nfk = pf[k], nf[k]
                    is_dot = byte == _DOT
                    is_hyphen = (f & HYPHEN) != 0
                    prev2_pos = -1
                    p2f = 0
                    has_prev2 = False
                    if is_dot or is_hyphen:
                        prev2_pos = _prev_start(data, max(prev_pos, 0))
                        has_prev2 = has_prev and prev_pos > cs and prev2_pos >= 0
                        if has_prev2:
                            p2f = _flags_at(char_flags, max(prev2_pos, 0))
                    # The rules below combine booleans with & and | (no short-circuit): the
                    # branches "and"/"or" compile to mispredict too often to be cheaper.
                    rules = _BYTE_RULES[byte]
                    after_byte = data[min(nxt[k], size - 1)]
                    run_cont = is_dot & has_prev & (data[max(p - 1, 0)] == _DOT)
                    run_next = is_dot & has_next & (after_byte == _DOT)
                    ellipsis = run_cont | run_next
                    dots_before[k] = run_cont
                    dots_after[k] = run_next
                    prefix_ok[k] = (
                        ((f & PREFIX) != 0) | ellipsis | ((byte == _PLUS) & ((nfk & DIGIT) == 0))
                    )
                    dot_suffix = is_dot & (
                        ((pfk & (DIGIT | LOWER | QUOTE | PUNCT_LIST)) != 0)
                        | (has_prev & ((_BYTE_RULES[data[max(prev_pos, 0)]] & _PCT_DASH) != 0))
                        | (((pfk & UPPER) != 0) & ((p2f & UPPER) != 0))
                    )
                    single_letter = has_prev & ((pfk & ALPHA) != 0) & ((p2f & WORD) == 0)
                    dotted = (
                        has_prev2 & ((pfk & ALPHA) != 0) & (data[max(prev2_pos, 0)] == _DOT)
                    )
                    dot_suffix = dot_suffix & (not single_letter) & (not dotted)
                    suffix_ok[k] = (
                        ((f & SUFFIX) != 0)
                        | ellipsis
                        | dot_suffix
                        | (((rules & _PCT_PLUS) != 0) & ((pfk & DIGIT) != 0))
                    )
                    # infix rules (masked to the chunk's core below)
                    fx = (
                        ((f & ICON) != 0)
                        | ellipsis
                        | ((byte == 0xE2) & ((f & PUNCT_LIST) != 0))
                    )
                    fx |= (
                        ((rules & _ARITHMETIC) != 0)
                        & ((pfk & DIGIT) != 0)
                        & (((nfk & DIGIT) != 0) | (after_byte == _MINUS))
                    )
                    fx |= is_dot & ((pfk & (LOWER | QUOTE)) != 0) & ((nfk & (UPPER | QUOTE)) != 0)
                    fx |= (byte == _COMMA) & ((pfk & ALPHA) != 0) & ((nfk & ALPHA) != 0)
                    if is_hyphen:
                        nnf = 0
                        if has_next and nxt[k] + 1 < ce:
                            nnf = _flags_at(char_flags, min(nxt[k] + 1, size - 1))
                        fx |= ((pfk & (ALPHA | DIGIT)) != 0) & (
                            ((nfk & ALPHA) != 0) | (((nfk & HYPHEN) != 0) & ((nnf & ALPHA) != 0))
                        )
                        fx |= (
                            ((pfk & HYPHEN) != 0)
                            & ((p2f & (ALPHA | DIGIT)) != 0)
                            & ((nfk & ALPHA) != 0)
                        )
                    fx |= (
                        ((rules & _RELATION) != 0)
                        & ((pfk & (ALPHA | DIGIT)) != 0)
                        & ((nfk & ALPHA) != 0)
                    )
                    infix[k] = fx
                    # data is zero-padded past ``size``: reading p + 2 is safe
                    url |= (
                        (byte == _COLON)
                        & (p + 2 < size)
                        & (data[p + 1] == _SLASH)
                        & (data[p + 2] == _SLASH)
                    )
                    in_prefix[k] = False
                    in_suffix[k] = False

                # a prefix run starts the chunk; a suffix run ends it
                if pos[0] == cs:
                    k = 0
                    while k < n and (k == 0 or nxt[k - 1] == pos[k]) and prefix_ok[k]:
                        in_prefix[k] = True
                        k += 1
                if nxt[n - 1] == ce:
                    k = n - 1
                    while k >= 0 and (k == n - 1 or nxt[k] == pos[k + 1]) and suffix_ok[k]:
                        in_suffix[k] = not in_prefix[k]
                        k -= 1

                for k in range(n):
                    p = pos[k]
                    byte = data[p]
                    is_hyphen = (flag[k] & HYPHEN) != 0
                    has_next = nxt[k] < ce
                    has_prev = p > cs
                    fx = infix[k] and not in_prefix[k] and not in_suffix[k] and not url
                    lone = in_prefix[k] or in_suffix[k] or fx
                    if lone:
                        continues = dots_before[k] or (
                            is_hyphen and has_prev and (pf[k] & HYPHEN) != 0 and fx
                        )
                        if not continues:
                            starts[n_starts] = p
                            n_starts += 1
                        joins_next = dots_after[k] or (is_hyphen and (nf[k] & HYPHEN) != 0 and fx)
                        if not joins_next and has_next:
                            starts[n_starts] = nxt[k]
                            n_starts += 1
                    # contractions: "n't" starts at the n, "'s" "'re" "'ll" "'ve" "'m" "'d" at '
                    apostrophe = byte == _QUOTE or (
                        byte == 0xE2
                        and data[min(p + 1, size - 1)] == 0x80
                        and data[min(p + 2, size - 1)] == 0x99
                    )
                    if apostrophe and (pf[k] & ALPHA) != 0:
                        after = nxt[k]
                        lower = data[min(after, size - 1)] | 0x20
                        second = data[min(after + 1, size - 1)] | 0x20
                        one_letter = after + 1 <= ce and lower in (115, 109, 100, 116)
                        one_letter = one_letter and (
                            after + 1 == ce or not _is_alnum(data[min(after + 1, size - 1)])
                        )
                        two_letters = after + 2 <= ce and (
                            (lower == 114 and second == 101)
                            or (lower == 108 and second == 108)
                            or (lower == 118 and second == 101)
                        )
                        two_letters = two_letters and (
                            after + 2 == ce or not _is_alnum(data[min(after + 2, size - 1)])
                        )
                        if one_letter and lower == 116:
                            if (data[max(p - 1, 0)] | 0x20) == 110:
                                starts[n_starts] = p - 1
                                n_starts += 1
                        elif one_letter or two_letters:
                            starts[n_starts] = p
                            n_starts += 1

            for a in range(1, n_starts):  # insertion sort: a chunk has few starts
                value = starts[a]
                b = a - 1
                while b >= 0 and starts[b] > value:
                    starts[b + 1] = starts[b]
                    b -= 1
                starts[b + 1] = value
            m = 1
            for a in range(1, n_starts):
                if starts[a] != starts[m - 1]:
                    starts[m] = starts[a]
                    m += 1
            if m > 1:
                m = _merge_specials(data, starts, m, ce, lengths, special_hashes, special_ends)
            for a in range(m):
                tokens[0, n_tokens] = starts[a]
                tokens[1, n_tokens] = n_chunks
                n_tokens += 1
            n_chunks += 1
        row += 1
    state[0], state[1], state[2] = i, n_tokens, n_chunks
    return True
