"""Pieces every PRRC rater shares: what text a rater sees, and how class probabilities
become one 0–5 score.

A rater must see what the annotators saw: the same excerpt (first ``excerpt_chars``
characters, cut at whitespace, exactly as the seed set was cut), so a rater trained on 2,000-
character excerpts is never asked about a 50-page document it cannot relate to its labels.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from metamix.scorers.prrc.rubrics import DEFAULT_EXCERPT_CHARS, DIMENSIONS, excerpt

__all__ = [
    "DEFAULT_EXCERPT_CHARS",
    "DEFAULT_MODEL_DIR",
    "DIMENSIONS",
    "KINDS",
    "SCORE_VALUES",
    "excerpts",
    "expected_value",
    "fasttext_text",
]

SCORE_VALUES = np.arange(6, dtype=np.float64)
KINDS = ("fasttext", "static", "embedding")
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "models"

# fastText splits on whitespace only; splitting punctuation off words lets "end." and "end"
# share a vector and turns separators ("|", "»", "©") into features of their own.
_PUNCT = re.compile(r"([^\w\s])")
_SPACE = re.compile(r"\s+")
_LABEL_WORD = re.compile(r"(?<!\S)__label__(\S*)")


def excerpts(texts: Sequence[str | None], excerpt_chars: int = DEFAULT_EXCERPT_CHARS) -> list[str]:
    """The annotator's view of each document; null documents become empty strings."""
    return [excerpt(t, excerpt_chars) if t else "" for t in texts]


def fasttext_text(text: str) -> str:
    """One fastText input line: lowercase, punctuation split off, all whitespace (newlines
    included — fastText reads one example per line) collapsed to single spaces. A word
    starting with fastText's label prefix (a dump of fastText training data holds many) would
    be read as a label, so its underscores are split off like punctuation."""
    line = _SPACE.sub(" ", _PUNCT.sub(r" \1 ", text.lower())).strip()
    return _LABEL_WORD.sub(r"_ _label_ _\1", line) if "__label__" in line else line


def expected_value(probabilities: np.ndarray, classes: Sequence[int] | None = None) -> np.ndarray:
    """Score = sum over classes of P(class) * class value, clipped to [0, 5].

    ``probabilities`` is (n_docs, n_classes); ``classes`` are the score values of its columns
    (default 0..n-1). Rows are renormalized, so a rater that saw only some classes in
    training still yields a proper mean; an all-zero row scores as the mean of the classes.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    values = SCORE_VALUES[: p.shape[1]] if classes is None else np.asarray(classes, np.float64)
    if p.ndim != 2 or p.shape[1] != len(values):
        raise ValueError(f"probabilities {p.shape} do not match {len(values)} classes")
    total = p.sum(axis=1, keepdims=True)
    uniform = np.full_like(p, 1.0 / max(p.shape[1], 1))
    p = np.divide(p, total, out=uniform, where=total > 0)
    return np.clip(p @ values, 0.0, 5.0)
