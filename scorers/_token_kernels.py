"""Numba loop of the tokenizer's last step (see ``scorers._tokens``).

Once token boundaries are known, each token's attributes (characters, letters, symbol
and punctuation status) are a per-token scan over a few bytes. As numpy they need a
``searchsorted`` owner lookup per special character and several full-length temporaries
per pass; as a loop it reads each byte once.
"""

from __future__ import annotations

import numpy as np

from scorers._hashing import _hash_one
from scorers._jit import jit


@jit
def token_attributes(
    data: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    leads: np.ndarray,
    lead_flags: np.ndarray,
    ascii_flags: np.ndarray,
    flag_bits: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per token: hash, code points, has an alphabetic character, has a character outside
    datatrove's punctuation set, is only Unicode punctuation, is one sentence-ending mark.

    ``flag_bits`` = (ALPHA, SYMBOL_SET, UNICODE_PUNCT, SENTENCE_END) of ``scorers._tokens``;
    ASCII letters and digits carry none of them, every other character is looked up (ASCII
    in ``ascii_flags``, others in ``lead_flags`` by walking ``leads`` alongside).
    """
    alpha, symbol_set, unicode_punct, sentence_end = (
        flag_bits[0],
        flag_bits[1],
        flag_bits[2],
        flag_bits[3],
    )
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
            if byte >= 0x80 and byte < 0xC0:
                continue  # continuation byte
            chars += 1
            if byte < 0x80:
                folded = byte | 0x20
                if 97 <= folded <= 122:
                    ascii_alnum += 1
                    ascii_letters += 1
                    continue
                if 48 <= byte <= 57:
                    ascii_alnum += 1
                    continue
                flags = ascii_flags[byte]
            else:
                while leads[lead] < i:
                    lead += 1
                flags = lead_flags[lead]
            if flags & alpha:
                alpha_specials += 1
            if not flags & symbol_set:
                non_symbol_specials += 1
            if not flags & unicode_punct:
                non_punct_specials += 1
            if flags & sentence_end:
                end_specials += 1
        hashes[t] = _hash_one(data, start[t], end[t])
        n_chars[t] = chars
        has_alpha[t] = ascii_letters > 0 or alpha_specials > 0
        non_symbol[t] = ascii_alnum > 0 or non_symbol_specials > 0
        is_punct[t] = ascii_alnum == 0 and non_punct_specials == 0
        is_sentence_end[t] = chars == 1 and end_specials == 1
    return hashes, n_chars, has_alpha, non_symbol, is_punct, is_sentence_end
