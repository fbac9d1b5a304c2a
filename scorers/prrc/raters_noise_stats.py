"""Statistics of damaged and manufactured text, for the PRRC heads.

An averaged embedding of OCR-damaged text ("Firefiglifers ocross Ncw ' 5outli Wales") sits
close to the embedding of the clean sentence, and a keyword-stuffed product listing
averages to a vector about its product: the rubrics rate both low on readability and
cleanliness, so the heads need to *see* the damage. These ratios catch it directly:
words that are in no dictionary, letters and digits (or cases) mixed inside words,
punctuation that was stripped or split off by a tokenizer, case folding, repeated phrases
and keywords, and the stock words of page chrome (each occurrence of a stock word, each
distinct stock word pair). The dictionary is the whole-word part of the shipped static
encoder's word-piece vocabulary (BERT uncased, ~21,700 words), read once, with common
inflections of its words.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

NOISE_STAT_NAMES = (
    "frac_oov_words", "mixed_junctions_per_word", "frac_capitalized_words", "char_class_entropy",
    "punct_per_word", "frac_spaced_punct", "frac_lower_sentence_starts",
    "frac_repeated_trigrams", "top_word_share", "log_boilerplate_per_100_words",
)  # fmt: skip

VOCABULARY = Path(__file__).resolve().parent / "models" / "static" / "encoder" / "tokenizer.json"
MIN_DICTIONARY_WORD = 3  # shorter strings are word pieces and initials more than words

# Stock words and word pairs of navigation, shops, consent banners and share bars.
BOILERPLATE_WORDS = frozenset((
    "cookie", "cookies", "copyright", "newsletter", "subscribe", "unsubscribe", "discount",
    "reviews", "cheap", "login", "checkout", "wishlist", "sitemap", "homepage", "©",
))  # fmt: skip
BOILERPLATE_PAIRS = frozenset(tuple(p.split()) for p in (
    "click here", "read more", "rights reserved", "privacy policy", "terms of", "add to",
    "sign in", "log in", "sign up", "share this", "follow us", "skip to", "back to",
    "powered by", "in stock", "free shipping", "buy now", "related posts", "leave a",
    "next page", "previous page", "contact us", "shopping cart", "my account", "best price",
    "order now", "learn more", "see more", "view all", "all rights",
))  # fmt: skip
_WORD_EDGE = "\"'()[]{}<>.,;:!?*_-–—«»“”‘’"
_SENTENCE_START = re.compile(r"(?:[.!?]\s+|\n\s*)([^\W\d_])")
_STOP_FOR_TOP = frozenset(("the", "of", "and", "to", "a", "in", "is", "that", "it", "for",
                           "as", "with", "on", "be", "by", "this", "are", "or", "an", "at"))


@lru_cache(maxsize=1)
def dictionary_words(path: Path = VOCABULARY) -> frozenset[str]:
    """Whole lower-case alphabetic words of the word-piece vocabulary."""
    vocab = json.loads(path.read_text(encoding="utf-8"))["model"]["vocab"]
    return frozenset(w for w in vocab if len(w) >= MIN_DICTIONARY_WORD and w.isascii()
                     and w.isalpha())


#: Inflections the word-piece vocabulary leaves to its pieces ('gearing' = 'gear' '##ing').
SUFFIXES = ("s", "es", "ed", "ing", "er", "ers", "ly", "est", "ness", "ment", "ments")


def is_known_word(word: str, dictionary: frozenset[str]) -> bool:
    """In the dictionary itself, or a dictionary word with a common inflection ('gearing',
    'makes' from 'make', 'studies' from 'study')."""
    if word in dictionary:
        return True
    if word.endswith("ies") and word[:-3] + "y" in dictionary:
        return True
    for suffix in SUFFIXES:
        stem = word[:-len(suffix)]
        if word.endswith(suffix) and len(stem) >= MIN_DICTIONARY_WORD - 1 and (
                stem in dictionary or stem + "e" in dictionary
                or (len(stem) > 3 and stem[-1] == stem[-2] and stem[:-1] in dictionary)):
            return True
    return False


def class_entropy(class_counts: np.ndarray) -> np.ndarray:
    """Entropy (bits) of each row's distribution over byte classes."""
    totals = class_counts.sum(axis=1, keepdims=True)
    p = class_counts / np.maximum(totals, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
    return terms.sum(axis=1)


def noise_statistics(texts: Sequence[str], class_counts: np.ndarray, byte_pairs: np.ndarray,
                     words: np.ndarray) -> np.ndarray:
    """(n_docs, len(NOISE_STAT_NAMES)) float64 from what ``text_statistics`` counted over the
    batch's bytes (class counts; junctions, capitalized words, marks, spaced marks; words)
    and a few set operations per document."""
    out = np.zeros((len(texts), len(NOISE_STAT_NAMES)))
    per_word = np.maximum(np.asarray(words, np.float64), 1)[:, None]
    out[:, [1, 2, 4]] = byte_pairs[:, :3] / per_word
    out[:, 5] = byte_pairs[:, 3] / np.maximum(byte_pairs[:, 2], 1)
    out[:, 3] = class_entropy(np.asarray(class_counts, np.float64))
    words_in = dictionary_words()
    for row, text in enumerate(texts):
        out[row, [0, 6, 7, 8, 9]] = _document(text, words_in)
    return out


@lru_cache(maxsize=1 << 16)
def _known_inflection(word: str) -> bool:
    return is_known_word(word, dictionary_words())


def _document(text: str, dictionary: frozenset[str]) -> tuple[float, ...]:
    raw = text.split()
    if not raw:
        return (0.0,) * 5
    n = len(raw)
    # one lower() for the document; empty words keep their place, so trigrams stay aligned
    lower = " ".join([w.strip(_WORD_EDGE) for w in raw]).lower().split(" ")
    counts = Counter(lower)
    checkable = {w: c for w, c in counts.items()
                 if len(w) >= MIN_DICTIONARY_WORD and w.isalpha() and w.isascii()}
    unknown = sum(checkable[w] for w in checkable.keys() - dictionary
                  if not _known_inflection(w))
    n_checkable = sum(checkable.values())
    starts = "".join(_SENTENCE_START.findall(text))
    repeated = (1.0 - len(set(zip(lower, lower[1:], lower[2:], strict=False))) / (n - 2)
                if n > 2 else 0.0)
    top = max((c for w, c in counts.items() if w and w not in _STOP_FOR_TOP), default=0)
    boilerplate = (sum(counts[w] for w in BOILERPLATE_WORDS.intersection(counts))
                   + len(BOILERPLATE_PAIRS.intersection(zip(lower, lower[1:], strict=False))))
    return (unknown / n_checkable if n_checkable else 0.0,
            sum(map(str.islower, starts)) / len(starts) if starts else 0.0,
            repeated, top / n, math.log1p(boilerplate * 100.0 / n))
