"""A vectorized approximation of spaCy's blank English tokenizer over raw UTF-8 bytes.

datatrove counts words with spaCy, which costs milliseconds per document. Its rules are
simple enough to apply to a whole batch at once with numpy: split on whitespace, then in
each whitespace chunk peel prefix punctuation off the front ("(", quotes, "$"...), suffix
punctuation off the back (",", ")", quotes, "." after a lowercase letter or digit...),
and split a few infixes (hyphen between letters, "." between lowercase and uppercase...).
Punctuation anywhere else stays inside the token ("\\p{Script", "/usr", "C++").
Exceptions we mirror: single letters with a period ("n.", "A."), dotted abbreviations
("e.g.", "U.S."), a few titles ("Mr."), URLs, and contractions ("do" + "n't", "it" + "'s").
Emoticons and spaCy's long special-case list are not reproduced.

Only non-alphanumeric characters need rules; they are a few percent of the bytes, so the
per-character work runs on that subset. Token identity is a 64-bit hash of the token's
bytes (exact for tokens up to 24 bytes, which is nearly all of them).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pyarrow as pa

from scorers._charclass import (
    ALPHA,
    ASCII_FLAGS,
    DIGIT,
    HYPHEN,
    ICON,
    LOWER,
    PREFIX,
    PUNCT_LIST,
    QUOTE,
    SENTENCE_END,
    SPACE,
    SUFFIX,
    SYMBOL_SET,
    UNICODE_PUNCT,
    UPPER,
    WORD,
    ByteClasses,
    byte_classes,
    utf8_buffer,
)
from scorers._hashing import token_hash
from scorers._spacy_rules import SPECIAL_TOKENS
from scorers._token_kernels import merge_special_tokens, token_attributes


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
    b = data[:size]
    # byte comparisons are far cheaper than table lookups over every byte
    classes = classes if classes is not None else byte_classes(data, size)
    space = classes.space
    alnum = classes.letter | classes.digit

    leads, lead_len, lead_flags = classes.leads, classes.lead_len, classes.lead_flags
    continuation = (b & 0xC0) == 0x80

    row_starts = offsets[:-1][offsets[:-1] < offsets[1:]]
    row_ends = offsets[1:][offsets[:-1] < offsets[1:]]
    prev_space = np.empty(size, dtype=bool)
    prev_space[1:] = space[:-1]
    prev_space[:1] = True
    prev_space[row_starts] = True
    next_space = np.empty(size, dtype=bool)
    next_space[:-1] = space[1:]
    next_space[-1:] = True
    next_space[row_ends - 1] = True
    chunk_start_mask = ~space & prev_space & ~continuation
    chunk_starts = np.flatnonzero(chunk_start_mask)
    if chunk_starts.size == 0:
        return _empty_tokens(data)
    chunk_ends = np.flatnonzero(~space & next_space) + 1
    if chunk_starts.size != chunk_ends.size:  # malformed UTF-8 at a row edge; be safe
        chunk_ends = chunk_ends[np.searchsorted(chunk_ends, chunk_starts, side="right")]

    # Candidate characters: everything that is neither space nor part of a word.
    ascii_candidates = np.flatnonzero(~alnum & ~space & (b < 0x80))
    ascii_candidate_flags = ASCII_FLAGS[b[ascii_candidates]]
    lead_candidates = (lead_flags & (WORD | SPACE)) == 0
    if lead_candidates.any():  # merge the two sorted position lists
        positions = np.concatenate((ascii_candidates, leads[lead_candidates]))
        flags = np.concatenate((ascii_candidate_flags, lead_flags[lead_candidates]))
        lengths = np.concatenate(
            (np.ones(ascii_candidates.size, np.int64), lead_len[lead_candidates])
        )
        order = np.argsort(positions, kind="stable")
        positions, flags, lengths = positions[order], flags[order], lengths[order]
    else:
        positions, flags = ascii_candidates, ascii_candidate_flags
        lengths = np.ones(ascii_candidates.size, np.int64)

    def flags_at(pos: np.ndarray) -> np.ndarray:
        """Flags of the characters starting at ``pos`` (0 outside [0, size))."""
        pos = np.asarray(pos)
        out = np.zeros(pos.size, dtype=np.int32)
        inside = (pos >= 0) & (pos < size)
        p = pos[inside]
        byte = b[p]
        value = ASCII_FLAGS[np.where(byte < 0x80, byte, 0)]
        non_ascii = byte >= 0x80
        if non_ascii.any():
            idx = np.clip(np.searchsorted(leads, p[non_ascii]), 0, max(leads.size - 1, 0))
            value[non_ascii] = np.where(leads[idx] == p[non_ascii], lead_flags[idx], 0)
        out[inside] = value
        return out

    def prev_start(pos: np.ndarray) -> np.ndarray:
        """Start of the character before ``pos`` (walks back over continuation bytes)."""
        prev = pos - 1
        for _ in range(3):
            back = (prev > 0) & continuation[np.maximum(prev, 0)]
            prev = np.where(back, prev - 1, prev)
        return prev

    chunk = np.searchsorted(chunk_starts, positions, side="right") - 1
    cs, ce = chunk_starts[chunk], chunk_ends[chunk]
    nxt = positions + lengths
    has_next = nxt < ce
    next_flags = np.where(has_next, flags_at(np.minimum(nxt, size - 1)), 0)
    has_prev = positions > cs
    prev_pos = prev_start(positions)
    prev_flags = np.where(has_prev, flags_at(np.maximum(prev_pos, 0)), 0)
    byte = b[positions]
    # two characters back is only needed around "." and hyphens
    prev2_pos = np.full(positions.size, -1, dtype=np.int64)
    prev2_flags = np.zeros(positions.size, dtype=np.int32)
    needs = np.flatnonzero((byte == ord(".")) | (flags & HYPHEN).astype(bool))
    if needs.size:
        prev2_pos[needs] = prev_start(np.maximum(prev_pos[needs], 0))
    has_prev2 = has_prev & (prev_pos > cs) & (prev2_pos >= 0)
    if needs.size:
        prev2_flags[needs] = np.where(
            has_prev2[needs], flags_at(np.maximum(prev2_pos[needs], 0)), 0
        )
    is_dot = byte == ord(".")
    # ".." runs form one token
    dot_run_cont = is_dot & has_prev & (b[np.maximum(positions - 1, 0)] == ord("."))
    dot_run_next = is_dot & has_next & (b[np.minimum(nxt, size - 1)] == ord("."))
    ellipsis = dot_run_cont | dot_run_next

    # Runs of adjacent candidates inside one chunk.
    adjacent = np.zeros(positions.size, dtype=bool)
    adjacent[1:] = (nxt[:-1] == positions[1:]) & (chunk[1:] == chunk[:-1])
    run_id = np.cumsum(~adjacent) - 1
    run_first = np.flatnonzero(~adjacent)
    run_last = np.r_[run_first[1:] - 1, positions.size - 1] if positions.size else run_first

    # Prefixes: a run that starts the chunk, while every character so far is a prefix.
    prefix_ok = (flags & PREFIX).astype(bool) | ellipsis
    prefix_ok |= (byte == ord("+")) & ~(next_flags & DIGIT).astype(bool)
    bad_before = np.cumsum(~prefix_ok)
    run_bad_base = (bad_before - ~prefix_ok)[run_first][run_id]
    in_prefix = (positions[run_first] == cs[run_first])[run_id] & (bad_before - run_bad_base == 0)

    # Suffixes: a run that ends the chunk, while every character from the end is a suffix.
    dot_suffix = is_dot & (
        (prev_flags & (DIGIT | LOWER | QUOTE | PUNCT_LIST)).astype(bool)
        | np.isin(b[np.maximum(prev_pos, 0)], np.frombuffer(b"%-+", np.uint8)) & has_prev
        | ((prev_flags & UPPER).astype(bool) & (prev2_flags & UPPER).astype(bool))
    )
    single_letter = (
        has_prev & (prev_flags & ALPHA).astype(bool) & ~(prev2_flags & WORD).astype(bool)
    )
    dotted = (
        has_prev2 & (prev_flags & ALPHA).astype(bool) & (b[np.maximum(prev2_pos, 0)] == ord("."))
    )
    dot_suffix &= ~single_letter & ~dotted  # titles ("Mr.") are merged back as specials
    suffix_ok = (flags & SUFFIX).astype(bool) | ellipsis | dot_suffix
    suffix_ok |= (_byte_set(b"%+")[byte]) & (prev_flags & DIGIT).astype(bool)
    bad_after = np.cumsum(~suffix_ok[::-1])[::-1]
    run_bad_tail = (bad_after - ~suffix_ok)[run_last][run_id]
    ends_chunk = (nxt[run_last] == ce[run_last])[run_id]
    in_suffix = ends_chunk & (bad_after - run_bad_tail == 0) & ~in_prefix

    # Infixes, never inside URLs.
    url_chunk = _url_chunks(b, chunk_starts, chunk_ends)
    in_core = ~in_prefix & ~in_suffix & ~url_chunk[chunk]
    nf, pf = next_flags, prev_flags
    infix = (
        (flags & ICON).astype(bool) | ellipsis | (byte == 0xE2) & (flags & PUNCT_LIST).astype(bool)
    )
    infix |= (
        _byte_set(b"+-*^")[byte]
        & (pf & DIGIT).astype(bool)
        & ((nf & DIGIT).astype(bool) | (b[np.minimum(nxt, size - 1)] == ord("-")))
    )
    infix |= is_dot & (pf & (LOWER | QUOTE)).astype(bool) & (nf & (UPPER | QUOTE)).astype(bool)
    infix |= (byte == ord(",")) & (pf & ALPHA).astype(bool) & (nf & ALPHA).astype(bool)
    # hyphens ("-", "--", "—", "~") between an alphanumeric and a letter
    alnum_before = (pf & (ALPHA | DIGIT)).astype(bool)
    is_hyphen = (flags & HYPHEN).astype(bool)
    next_next_flags = np.zeros(positions.size, dtype=np.int32)
    hyphens = np.flatnonzero(is_hyphen & has_next)
    if hyphens.size:
        after_next = nxt[hyphens] + 1
        next_next_flags[hyphens] = np.where(
            after_next < ce[hyphens], flags_at(np.minimum(after_next, size - 1)), 0
        )
    second_of_pair = (
        is_hyphen & (pf & HYPHEN).astype(bool) & (prev2_flags & (ALPHA | DIGIT)).astype(bool)
    )
    infix |= (
        is_hyphen
        & alnum_before
        & (
            (nf & ALPHA).astype(bool)
            | ((nf & HYPHEN).astype(bool) & (next_next_flags & ALPHA).astype(bool))
        )
    )
    infix |= second_of_pair & (nf & ALPHA).astype(bool)
    infix |= (
        _byte_set(b":<>=/")[byte] & (pf & (ALPHA | DIGIT)).astype(bool) & (nf & ALPHA).astype(bool)
    )
    infix &= in_core

    starts = [chunk_starts]
    lone = in_prefix | in_suffix | infix
    # a continuing "." of an ellipsis or "-" of a dash run does not start a token
    continues = (ellipsis & dot_run_cont) | (
        (flags & HYPHEN).astype(bool) & has_prev & (pf & HYPHEN).astype(bool) & infix
    )
    starts.append(positions[lone & ~continues])
    after = lone & ~(ellipsis & dot_run_next)
    after &= ~((flags & HYPHEN).astype(bool) & (nf & HYPHEN).astype(bool) & infix)
    starts.append(nxt[after & has_next])
    starts.extend(_contraction_starts(b, positions, flags, prev_flags, nxt, ce, size))
    token_start = np.concatenate(starts)
    token_start.sort()
    token_start = token_start[np.r_[True, token_start[1:] != token_start[:-1]]]
    # every chunk start is a token start, so chunk ids are a running count
    token_chunk = np.cumsum(chunk_start_mask[token_start]) - 1
    token_start, token_chunk = _merge_special_tokens(data, token_start, token_chunk, chunk_ends)
    following = np.r_[token_start[1:], size]
    token_end = np.minimum(following, chunk_ends[token_chunk])
    chunk_row = np.searchsorted(offsets, chunk_starts, side="right") - 1

    return _token_table(data, chunk_row[token_chunk], token_start, token_end, classes)


_SPECIAL_HASHES: np.ndarray | None = None
_SPECIAL_BUCKETS: np.ndarray | None = None


def _byte_set(chars: bytes) -> np.ndarray:
    table = np.zeros(256, dtype=bool)
    table[np.frombuffer(chars, np.uint8)] = True
    return table


def _merge_special_tokens(
    data: np.ndarray, token_start: np.ndarray, token_chunk: np.ndarray, chunk_ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Merge 2-3 adjacent tokens of one chunk that spell a spaCy special case ("):", "e.g.")."""
    global _SPECIAL_HASHES, _SPECIAL_BUCKETS
    if _SPECIAL_HASHES is None:
        hashes = np.sort([token_hash(s) for s in SPECIAL_TOKENS]).astype(np.int64)
        buckets = np.zeros(1 << 16, dtype=bool)
        buckets[hashes & 0xFFFF] = True
        _SPECIAL_HASHES, _SPECIAL_BUCKETS = hashes, buckets
    if token_start.size < 2:
        return token_start, token_chunk
    return merge_special_tokens(
        data, token_start, token_chunk, chunk_ends, _SPECIAL_HASHES, _SPECIAL_BUCKETS
    )


def _url_chunks(b: np.ndarray, chunk_starts: np.ndarray, chunk_ends: np.ndarray) -> np.ndarray:
    url = np.zeros(chunk_starts.size, dtype=bool)
    colons = np.flatnonzero(b[: max(b.size - 2, 0)] == ord(":"))
    hits = colons[(b[colons + 1] == ord("/")) & (b[colons + 2] == ord("/"))]
    url[np.searchsorted(chunk_starts, hits, side="right") - 1] = True
    www = np.flatnonzero(b[: max(b.size - 3, 0)] == ord("w"))
    www = www[(b[www + 1] == ord("w")) & (b[www + 2] == ord("w")) & (b[www + 3] == ord("."))]
    chunk = np.searchsorted(chunk_starts, www, side="right") - 1
    url[chunk[chunk_starts[chunk] == www]] = True
    return url


def _contraction_starts(b, positions, flags, prev_flags, nxt, chunk_end, size) -> list[np.ndarray]:
    """Token starts for "n't" (at the n) and "'s" "'re" "'ll" "'ve" "'m" "'d" (at the ')."""
    apostrophe = (b[positions] == ord("'")) | (
        (b[positions] == 0xE2)
        & (b[np.minimum(positions + 1, size - 1)] == 0x80)
        & (b[np.minimum(positions + 2, size - 1)] == 0x99)
    )
    apostrophe &= (prev_flags & ALPHA).astype(bool)
    ap, after = positions[apostrophe], nxt[apostrophe]
    ends = chunk_end[apostrophe]
    lower = b[np.minimum(after, size - 1)] | 0x20
    second = b[np.minimum(after + 1, size - 1)] | 0x20
    one_letter = (after + 1 <= ends) & _byte_set(b"smdt")[lower]
    one_letter &= (after + 1 == ends) | ~_is_alnum(b[np.minimum(after + 1, size - 1)])
    two_letters = (after + 2 <= ends) & (
        ((lower == ord("r")) & (second == ord("e")))
        | ((lower == ord("l")) & (second == ord("l")))
        | ((lower == ord("v")) & (second == ord("e")))
    )
    two_letters &= (after + 2 == ends) | ~_is_alnum(b[np.minimum(after + 2, size - 1)])
    nt = one_letter & (lower == ord("t")) & ((b[np.maximum(ap - 1, 0)] | 0x20) == ord("n"))
    clitic = (one_letter & (lower != ord("t"))) | two_letters
    return [ap[clitic], ap[nt] - 1]


def _is_alnum(values: np.ndarray) -> np.ndarray:
    low = values | 0x20
    return ((low >= ord("a")) & (low <= ord("z"))) | ((values >= ord("0")) & (values <= ord("9")))


_TOKEN_FLAG_BITS = np.array([ALPHA, SYMBOL_SET, UNICODE_PUNCT, SENTENCE_END], dtype=np.int32)


def _token_table(
    data: np.ndarray, row: np.ndarray, start: np.ndarray, end: np.ndarray, classes: ByteClasses
) -> Tokens:
    """Per-token attributes (one numba scan over the tokens' bytes)."""
    hashes, n_chars, has_alpha, non_symbol, is_punct, is_sentence_end = token_attributes(
        data, start, end, classes.leads, classes.lead_flags, ASCII_FLAGS, _TOKEN_FLAG_BITS
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
