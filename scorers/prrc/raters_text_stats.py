"""Cheap text statistics that PRRC heads see next to the embedding of an excerpt.

An averaged token embedding says what a text is about and how it is worded, but not how it
is laid out: a navigation bar and a paragraph about the same topic average to similar
vectors. The rubrics judge exactly that layout (menus, fragments, markup, run-together
lines), so the heads also get a few dozen ratios of characters, lines and words. They are
computed for a whole batch at once over the concatenated UTF-8 bytes (one ``bincount`` per
family), plus a few C-level ``str`` calls per document, so they cost far less than the
tokenizer.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from metamix.scorers.prrc.raters_noise_stats import NOISE_STAT_NAMES, noise_statistics

BASE_STAT_NAMES = (
    "log_bytes", "frac_upper", "frac_letter", "frac_digit", "frac_space", "frac_newline",
    "frac_non_ascii", "frac_code_symbol", "frac_punct", "frac_control",
    "mean_word_bytes", "log_words_per_sentence",
    "frac_lines_terminal", "frac_lines_short", "frac_lines_markup", "log_mean_line_bytes",
    "frac_lines_blank", "frac_lines_duplicate",
    "frac_stop_words", "frac_alpha_words", "type_token_ratio", "urls_per_kb",
)  # fmt: skip
STAT_NAMES = (*BASE_STAT_NAMES, *NOISE_STAT_NAMES)

# One class per byte (mutually exclusive), so one bincount per batch counts them all.
_OTHER, _UPPER, _LOWER, _DIGIT, _SPACE, _NEWLINE, _NON_ASCII, _CODE, _PUNCT, _CONTROL = range(10)
_N_CLASSES = 10
_BYTE_CLASS = np.full(256, _OTHER, dtype=np.int64)
_BYTE_CLASS[ord("A") : ord("Z") + 1] = _UPPER
_BYTE_CLASS[ord("a") : ord("z") + 1] = _LOWER
_BYTE_CLASS[ord("0") : ord("9") + 1] = _DIGIT
_BYTE_CLASS[[ord(" "), ord("\t")]] = _SPACE
_BYTE_CLASS[ord("\n")] = _NEWLINE
_BYTE_CLASS[128:] = _NON_ASCII
_BYTE_CLASS[list(b"{}[]()<>;=_\\/$@*|#&%^~`+")] = _CODE
_BYTE_CLASS[list(b".,:!?'\"-")] = _PUNCT
_BYTE_CLASS[[b for b in range(32) if b not in (9, 10)] + [127]] = _CONTROL

_IS_SPACE = np.zeros(256, dtype=bool)
_IS_SPACE[list(b" \t\n\r\x0b\x0c")] = True
# A line ends a sentence or clause when its last visible byte is one of these.
_TERMINAL = np.zeros(256, dtype=bool)
_TERMINAL[list(b".!?:;\"')")] = True
_SENTENCE_END = np.zeros(256, dtype=bool)
_SENTENCE_END[list(b".!?")] = True
# List bullets, headings, rules, tables, quotes, directives: lines of structure, not prose.
_MARKUP_START = np.zeros(256, dtype=bool)
_MARKUP_START[list(b"*-#=|>+[.<~_")] = True
SHORT_LINE_BYTES = 30

# The most frequent English function words: prose has ~40-50% of them, lists and code few.
STOP_WORDS = frozenset((
    "the", "of", "and", "to", "a", "in", "is", "that", "it", "for", "as", "with", "was", "on",
    "be", "by", "this", "are", "or", "not", "from", "at", "which", "have", "an", "but", "they",
    "his", "he", "we", "their", "can", "has", "its", "you", "i", "if", "there", "all", "one",
    "so", "been", "were", "will", "would", "more", "what", "when", "who", "may", "these",
    "some", "into", "than", "then", "also", "any", "only", "other", "such", "our", "out",
    "about", "no",
))


def text_statistics(texts: Sequence[str]) -> np.ndarray:
    """(n_docs, len(STAT_NAMES)) float32 statistics; an empty text gives all zeros.

    Fractions are of bytes (character classes), of non-blank lines (line shapes) or of
    whitespace-separated words; lengths enter as logs so a head sees their order of
    magnitude rather than their raw size.
    """
    n = len(texts)
    out = np.zeros((n, len(STAT_NAMES)), dtype=np.float64)
    if n == 0:
        return out.astype(np.float32)
    encoded = [t.encode("utf-8", "replace") for t in texts]
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=n)
    buf = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    if not len(buf):
        return out.astype(np.float32)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    safe = np.maximum(lengths, 1).astype(np.float64)

    doc_of_byte = np.repeat(np.arange(n), lengths)
    classes = _BYTE_CLASS[buf]
    counts = np.bincount(doc_of_byte * _N_CLASSES + classes, minlength=n * _N_CLASSES)
    counts = counts.reshape(n, _N_CLASSES).astype(np.float64)
    out[:, 0] = np.log1p(lengths)
    for col, cls in enumerate((_UPPER, None, _DIGIT, _SPACE, _NEWLINE, _NON_ASCII, _CODE,
                               _PUNCT, _CONTROL), start=1):
        value = counts[:, _UPPER] + counts[:, _LOWER] if cls is None else counts[:, cls]
        out[:, col] = value / safe

    space = _IS_SPACE[buf]
    visible = ~space
    # A word starts at a visible byte that follows whitespace or begins its document.
    previous_space = np.empty_like(space)
    previous_space[1:] = space[:-1]
    previous_space[starts[lengths > 0]] = True
    words = np.bincount(doc_of_byte, weights=visible & previous_space, minlength=n)
    visible_bytes = np.bincount(doc_of_byte, weights=visible, minlength=n)
    next_space = np.empty_like(space)
    next_space[:-1] = space[1:]
    next_space[ends[lengths > 0] - 1] = True
    sentences = np.bincount(doc_of_byte, weights=_SENTENCE_END[buf] & next_space, minlength=n)
    out[:, 10] = visible_bytes / np.maximum(words, 1)
    out[:, 11] = np.log1p(words / np.maximum(sentences, 1))

    out[:, 12:17] = _line_shapes(buf, visible, starts, ends, lengths)
    for row, text in enumerate(texts):
        out[row, 17:22] = _word_shapes(text)
    out[:, len(BASE_STAT_NAMES):] = noise_statistics(
        texts, counts, _byte_pairs(buf, classes, doc_of_byte, visible & previous_space, n),
        words)
    out[lengths == 0] = 0.0
    return out.astype(np.float32)


# Marks whose loss (stripped punctuation) or split-off (" ." of tokenised dumps) the heads see.
_IS_MARK = np.zeros(256, dtype=bool)
_IS_MARK[list(b",.;:!?")] = True


def _byte_pairs(buf: np.ndarray, classes: np.ndarray, doc_of_byte: np.ndarray,
                word_start: np.ndarray, n: int) -> np.ndarray:
    """(n, 4) counts per document: letter-digit and lower-upper junctions inside the text
    ('5outli', 'NcW'), words starting with a capital, punctuation marks, and marks that
    follow a space."""
    same = doc_of_byte[1:] == doc_of_byte[:-1]
    a, b = classes[:-1], classes[1:]
    letter_a, letter_b = (a == _UPPER) | (a == _LOWER), (b == _UPPER) | (b == _LOWER)
    junction = same & ((letter_a & (b == _DIGIT)) | ((a == _DIGIT) & letter_b)
                       | ((a == _LOWER) & (b == _UPPER)))
    mark = _IS_MARK[buf]
    spaced = same & mark[1:] & (buf[:-1] == 32)
    out = np.zeros((n, 4))
    out[:, 0] = np.bincount(doc_of_byte[1:], weights=junction, minlength=n)
    out[:, 1] = np.bincount(doc_of_byte, weights=word_start & (classes == _UPPER), minlength=n)
    out[:, 2] = np.bincount(doc_of_byte, weights=mark, minlength=n)
    out[:, 3] = np.bincount(doc_of_byte[1:], weights=spaced, minlength=n)
    return out


def _line_shapes(buf: np.ndarray, visible: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                 lengths: np.ndarray) -> np.ndarray:
    """Per document: shares of non-blank lines that end like a sentence, are short, or start
    like markup; log mean non-blank line length; share of blank lines."""
    n = len(lengths)
    newlines = np.flatnonzero(buf == 10)
    # Every document has 1 + (its newlines) lines; a line is [line_start, line_end).
    per_doc = np.bincount(np.searchsorted(ends, newlines, side="right"), minlength=n)
    line_start = np.sort(np.concatenate([starts, newlines + 1]), kind="stable")
    line_end = np.sort(np.concatenate([newlines, ends]), kind="stable")
    doc_of_line = np.repeat(np.arange(n), per_doc + 1)

    visible_cum = np.concatenate([[0], np.cumsum(visible)])
    visible_in_line = visible_cum[line_end] - visible_cum[line_start]
    nonblank = visible_in_line > 0
    positions = np.arange(len(buf))
    last_visible = np.maximum.accumulate(np.where(visible, positions, -1))
    first_visible = np.minimum.accumulate(np.where(visible, positions, len(buf))[::-1])[::-1]
    padded = np.concatenate([buf, [32]])  # index len(buf): "no visible byte", a space
    last_byte = padded[np.where(nonblank, last_visible[np.maximum(line_end - 1, 0)], len(buf))]
    first_byte = padded[np.where(nonblank, first_visible[np.minimum(line_start, len(buf) - 1)],
                                 len(buf))]
    line_bytes = (line_end - line_start).astype(np.float64)

    def per_document(values: np.ndarray) -> np.ndarray:
        return np.bincount(doc_of_line, weights=values, minlength=n)

    n_nonblank = per_document(nonblank)
    denom = np.maximum(n_nonblank, 1)
    shapes = np.zeros((n, 5))
    shapes[:, 0] = per_document(nonblank & _TERMINAL[last_byte]) / denom
    shapes[:, 1] = per_document(nonblank & (line_bytes < SHORT_LINE_BYTES)) / denom
    shapes[:, 2] = per_document(nonblank & _MARKUP_START[first_byte]) / denom
    shapes[:, 3] = np.log1p(per_document(np.where(nonblank, line_bytes, 0.0)) / denom)
    shapes[:, 4] = 1.0 - n_nonblank / (per_doc + 1)
    return shapes


def _word_shapes(text: str) -> tuple[float, float, float, float, float]:
    """Duplicate-line share, stop-word share, purely alphabetic word share, type-token
    ratio and URLs per kilobyte: set and membership tests that numpy cannot batch."""
    lines = [line.strip() for line in text.split("\n")]
    lines = [line for line in lines if line]
    duplicate = 1.0 - len(set(lines)) / len(lines) if lines else 0.0
    words = text.lower().split()
    if not words:
        return duplicate, 0.0, 0.0, 0.0, 0.0
    n_words = len(words)
    stop = sum(map(STOP_WORDS.__contains__, words)) / n_words  # map: no Python frame per word
    alpha = sum(map(str.isalpha, words)) / n_words
    urls = (text.count("://") + text.count("www.")) * 1000.0 / max(len(text), 1)
    return duplicate, stop, alpha, len(set(words)) / n_words, urls
