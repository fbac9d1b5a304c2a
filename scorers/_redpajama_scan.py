"""Single-pass byte kernels behind the RedPajama-V2 signals (see ``metamix.scorers.redpajama``).

Each kernel walks a batch's UTF-8 bytes once, row by row, instead of the dozen numpy
passes (masks, run starts, ``searchsorted`` to rows) the same signals otherwise take.
Inputs are the batch buffers of ``metamix.scorers._charclass.utf8_buffer`` and ``ByteClasses``:
``space`` marks every byte of a whitespace character; ``lead_flags`` holds the character
flags of each non-ASCII character in buffer order (the k-th byte >= 0xC0 is the k-th
character), so a kernel can follow them with a counter instead of a lookup.

Results match the numpy definitions bit for bit: sums run in the same (line) order.
"""

from __future__ import annotations

import numpy as np

from metamix.scorers._charclass import ALPHA, DIGIT, SENTENCE_END, UPPER, ascii_has
from metamix.scorers._jit import jit

# Per ASCII byte: letter, word character (\w: letters, digits, "_"), sentence end (.!?).
_ASCII_LETTER = ascii_has(ALPHA)
_ASCII_WORD = ascii_has(ALPHA | DIGIT, b"_")
_ASCII_TERMINAL = ascii_has(SENTENCE_END)  # . ! ?
_ASCII_UPPER = ascii_has(UPPER)
_ASCII_DIGIT = ascii_has(DIGIT)


@jit
def word_run_counts(
    data: np.ndarray, offsets: np.ndarray, space: np.ndarray, lead_flags: np.ndarray, word: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: sentences (runs of ``\\w`` with a ``.!?`` since the previous run), NLTK
    WordPunct words (runs of ``\\w``, or of characters neither ``\\w`` nor space) and the
    ``\\w`` runs that contain an ASCII letter.

    Branch-free per ASCII byte (0/1 arithmetic instead of if/else): word and run boundaries
    are unpredictable in real text, and mispredicted branches dominated the loop's time.
    """
    n_rows = offsets.size - 1
    sentences = np.zeros(n_rows, np.int64)
    raw_words = np.zeros(n_rows, np.int64)
    with_letter = np.zeros(n_rows, np.int64)
    lead = -1
    char_is_word = 0
    for row in range(n_rows):
        previous_word = 0
        previous_other = 0
        terminal_seen = 1
        run_has_letter = 0
        n_sentences = 0
        n_raw = 0
        n_letter_runs = 0
        for i in range(offsets[row], offsets[row + 1]):
            byte = data[i]
            if byte < 0x80:
                is_word = _ASCII_WORD[byte]
                is_letter = _ASCII_LETTER[byte]
                terminal = _ASCII_TERMINAL[byte]
            else:  # rare: keep the branch
                if byte >= 0xC0:
                    lead += 1
                    char_is_word = 1 if (lead_flags[lead] & word) != 0 else 0
                is_word = char_is_word
                is_letter = 0
                terminal = 0
            other = (1 - is_word) * (1 - space[i])
            run_start = is_word * (1 - previous_word)
            n_raw += run_start + other * (1 - previous_other)
            n_sentences += run_start * terminal_seen
            terminal_seen = (terminal_seen * (1 - run_start)) | ((1 - is_word) * terminal)
            run_has_letter *= 1 - run_start
            letter = is_letter * (1 - run_has_letter)
            n_letter_runs += letter
            run_has_letter |= letter
            previous_other = other
            previous_word = is_word
        sentences[row] = n_sentences
        raw_words[row] = n_raw
        with_letter[row] = n_letter_runs
    return sentences, raw_words, with_letter


# Per byte: 0 for ASCII punctuation (deleted), else 1; and the byte ASCII-lowercased.
_KEEP = np.ones(256, np.int64)
for _low, _high in ((33, 47), (58, 64), (91, 96), (123, 126)):
    _KEEP[_low : _high + 1] = 0
_LOWER = np.arange(256, dtype=np.uint8)
_LOWER[65:91] |= 0x20


@jit
def normalized_words(
    data: np.ndarray, offsets: np.ndarray, space: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """RPv2's normalized words: ASCII punctuation deleted, ASCII lowercased, split on
    whitespace (never across rows).

    Returns the normalized bytes (zero-padded by 16, for ``_hash_spans``), and per word its
    start and end there, its row, its code points and its start in ``data``.

    The loop has no data-dependent branches: every byte is stored and the counters advance
    by 0 or 1. Whether a byte is punctuation or starts a word is unpredictable in real
    text, and mispredicted branches made the branching version 3x slower.
    """
    n_rows = offsets.size - 1
    size = offsets[n_rows]
    compact = np.zeros(size + 16, np.uint8)
    # a word is 1+ bytes followed by a space byte or its row's end
    words_cap = size // 2 + n_rows + 1
    out = np.empty((5, words_cap), np.int64)  # start, end, row, code points, original start
    kept = 0
    words = 0
    chars = 0  # of the last word so far (rewritten, unchanged, until the next one starts)
    end = 0
    for row in range(n_rows):
        in_word = 0
        for i in range(offsets[row], offsets[row + 1]):
            byte = data[i]
            keep = _KEEP[byte]
            compact[kept] = _LOWER[byte]
            blank = keep * space[i]
            char_start = keep * (1 - space[i]) * ((byte & 0xC0) != 0x80)
            start = char_start * (1 - in_word)
            # the next word's slot holds this byte's start until a word actually starts
            out[0, words] = kept
            out[2, words] = row
            out[4, words] = i
            words += start
            in_word = (in_word | start) * (1 - blank)
            chars = chars * (1 - start) + char_start
            grows = in_word * keep
            end = grows * (kept + 1) + (1 - grows) * end
            last = max(words - 1, 0)
            out[1, last] = end
            out[3, last] = chars
            kept += keep
    compact[kept] = 0  # the last store may have been a deleted byte
    return (
        compact,
        out[0, :words].copy(),
        out[1, :words].copy(),
        out[2, :words].copy(),
        out[3, :words].copy(),
        out[4, :words].copy(),
    )


@jit
def line_means(
    data: np.ndarray,
    offsets: np.ndarray,
    space: np.ndarray,
    lead_flags: np.ndarray,
    upper_flag: int,
    numeric_flag: int,
    word_start: np.ndarray,
    word_len: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row, means over its lines (each ends after a "\\n" or at the row's end) of:
    uppercase letters / characters, numeric characters / normalized line length (the
    line's words joined by single spaces; 0 without words), and whether the line ends,
    before trailing whitespace, with . ! ? or a closing double quote. NaN without lines."""
    n_rows = offsets.size - 1
    upper_mean = np.full(n_rows, np.nan)
    numeric_mean = np.full(n_rows, np.nan)
    terminal_mean = np.full(n_rows, np.nan)
    lead = -1
    word = 0
    n_words = word_start.size
    for row in range(n_rows):
        row_start, row_end = offsets[row], offsets[row + 1]
        if row_start == row_end:
            continue
        n_lines = 0
        upper_total = 0.0
        numeric_total = 0.0
        terminal_total = 0.0
        line_start = row_start
        chars = 0
        upper = 0
        numeric = 0
        for i in range(row_start, row_end):
            byte = data[i]
            if byte < 0x80:  # table lookups, not branches: case and digits are unpredictable
                chars += 1
                upper += _ASCII_UPPER[byte]
                numeric += _ASCII_DIGIT[byte]
            elif byte >= 0xC0:
                lead += 1
                chars += 1
                flags = lead_flags[lead]
                if flags & upper_flag:
                    upper += 1
                if flags & numeric_flag:
                    numeric += 1
            if byte != 10 and i != row_end - 1:
                continue
            line_end = i + 1
            words_in_line = 0
            word_chars = 0.0
            while word < n_words and word_start[word] < line_end:
                words_in_line += 1
                word_chars += word_len[word]
                word += 1
            normalized_len = word_chars + max(words_in_line - 1, 0)
            upper_total += upper / chars if chars > 0 else 0.0
            numeric_total += numeric / normalized_len if normalized_len > 0 else 0.0
            last = i
            while last >= line_start and space[last]:
                last -= 1
            if last >= line_start:
                end = data[last]
                if end == 46 or end == 33 or end == 63 or (
                    end == 0x9D
                    and last - 2 >= line_start
                    and data[last - 1] == 0x80
                    and data[last - 2] == 0xE2
                ):
                    terminal_total += 1.0
            n_lines += 1
            line_start = line_end
            chars = 0
            upper = 0
            numeric = 0
        upper_mean[row] = upper_total / n_lines
        numeric_mean[row] = numeric_total / n_lines
        terminal_mean[row] = terminal_total / n_lines
    return upper_mean, numeric_mean, terminal_mean
