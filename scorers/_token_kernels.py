"""Numba loop of the tokenizer's last step (see ``metamix.scorers._tokens``).

Once token boundaries are known, each token's attributes (characters, letters, symbol
and punctuation status) are a per-token scan over a few bytes. As numpy they need a
``searchsorted`` owner lookup per special character and several full-length temporaries
per pass; as a loop it reads each byte once.
"""

from __future__ import annotations

import numpy as np

from metamix.scorers._charclass import (
    ALPHA,
    DIGIT,
    SENTENCE_END,
    SYMBOL_SET,
    UNICODE_PUNCT,
    ascii_has,
)
from metamix.scorers._hashing import _hash_one
from metamix.scorers._jit import jit


def _ascii_token_bits() -> np.ndarray:
    """Per ASCII byte, what it adds to a token's counts: 1 letter, 2 letter or digit, and
    for other characters 4 alphabetic, 8 outside datatrove's punctuation set, 16 not
    Unicode punctuation, 32 sentence end."""
    letter, alnum = ascii_has(ALPHA), ascii_has(ALPHA | DIGIT)
    other = 1 - alnum
    return (
        letter
        | alnum << 1
        | other * ascii_has(ALPHA) << 2
        | other * (1 - ascii_has(SYMBOL_SET)) << 3
        | other * (1 - ascii_has(UNICODE_PUNCT)) << 4
        | other * ascii_has(SENTENCE_END) << 5
    )


_ASCII_TOKEN_BITS = _ascii_token_bits()


@jit
def token_attributes(
    data: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    leads: np.ndarray,
    lead_flags: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per token: hash, code points, has an alphabetic character, has a character outside
    datatrove's punctuation set, is only Unicode punctuation, is one sentence-ending mark.

    ASCII bytes add table bits (no branches: letters, digits and punctuation alternate
    unpredictably); other characters' flags are found by walking ``leads`` alongside.
    """
    n = start.size
    hashes = np.empty(n, np.uint64)
    n_chars = np.empty(n, np.int64)
    has_alpha = np.empty(n, np.bool_)
    non_symbol = np.empty(n, np.bool_)
    is_punct = np.empty(n, np.bool_)
    is_sentence_end = np.empty(n, np.bool_)
    lead = 0
    for t in range(n):
        chars = 0
        ascii_alnum = 0
        ascii_letters = 0
        alpha_specials = 0
        non_symbol_specials = 0
        non_punct_specials = 0
        end_specials = 0
        for i in range(start[t], end[t]):
            byte = data[i]
            if byte < 0x80:
                bits = _ASCII_TOKEN_BITS[byte]
                chars += 1
                ascii_letters += bits & 1
                ascii_alnum += (bits >> 1) & 1
                alpha_specials += (bits >> 2) & 1
                non_symbol_specials += (bits >> 3) & 1
                non_punct_specials += (bits >> 4) & 1
                end_specials += (bits >> 5) & 1
            elif byte >= 0xC0:
                chars += 1
                while leads[lead] < i:
                    lead += 1
                flags = lead_flags[lead]
                if flags & ALPHA:
                    alpha_specials += 1
                if not flags & SYMBOL_SET:
                    non_symbol_specials += 1
                if not flags & UNICODE_PUNCT:
                    non_punct_specials += 1
                if flags & SENTENCE_END:
                    end_specials += 1
        hashes[t] = _hash_one(data, start[t], end[t])
        n_chars[t] = chars
        has_alpha[t] = ascii_letters > 0 or alpha_specials > 0
        non_symbol[t] = ascii_alnum > 0 or non_symbol_specials > 0
        is_punct[t] = ascii_alnum == 0 and non_punct_specials == 0
        is_sentence_end[t] = chars == 1 and end_specials == 1
    return hashes, n_chars, has_alpha, non_symbol, is_punct, is_sentence_end
