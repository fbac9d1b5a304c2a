"""The vectorized RedPajama signals against a direct, per-document transcription of RPv2's
Python definitions (``app/src/core/quality_signals`` in RedPajama-Data v2)."""

from __future__ import annotations

import math
import re
import string
import unicodedata
from collections import Counter

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metamix.scorers.registry import SCORERS, load_builtin

_PUNCT = str.maketrans("", "", string.punctuation)


def normalize(text: str) -> str:
    text = text.translate(_PUNCT).lower().strip()
    return unicodedata.normalize("NFD", re.sub(r"\s+", " ", text))


def reference(text: str) -> dict[str, float]:
    words = normalize(text).split()
    raw_words = re.findall(r"\w+|[^\w\s]+", text)  # nltk WordPunctTokenizer
    lines = [m.group() for m in re.finditer(r"([^\n]*\n|[^\n]+$)", text)]
    n = len(words)
    chars = sum(map(len, words))
    counts = Counter(words)

    def top(size: int) -> float:
        grams = Counter(tuple(words[i : i + size]) for i in range(n - size + 1))
        if not grams:
            return 0.0
        gram, count = grams.most_common(1)[0]
        return 0.0 if count <= 1 else sum(map(len, gram)) * count / chars

    def line_mean(values: list[float]) -> float:
        return sum(values) / len(values) if values else math.nan

    nan = math.nan
    return {
        "rps_doc_word_count": n,
        "rps_doc_num_sentences": len(re.findall(r"\b[^.!?]+[.!?]*", text)),
        "rps_doc_mean_word_length": chars / n if n else nan,
        "rps_doc_frac_unique_words": len(counts) / n if n else nan,
        "rps_doc_unigram_entropy": (
            sum(-c / n * math.log(c / n) for c in counts.values()) if n else nan
        ),
        "rps_doc_frac_no_alph_words": (
            1 - sum(bool(re.search("[a-zA-Z]", w)) for w in raw_words) / len(raw_words)
            if raw_words
            else nan
        ),
        "rps_doc_frac_chars_top_2gram": top(2),
        "rps_doc_frac_chars_top_3gram": top(3),
        "rps_lines_uppercase_letter_fraction": line_mean(
            [sum(map(str.isupper, line)) / len(line) for line in lines]
        ),
        "rps_lines_numerical_chars_fraction": line_mean(
            [
                sum(map(str.isnumeric, normalize(line))) / len(normalize(line))
                if normalize(line)
                else 0.0
                for line in lines
            ]
        ),
        "rps_lines_ending_with_terminal_punctution_mark": line_mean(
            [float(line.rstrip().endswith((".", "!", "?", "”"))) for line in lines]
        ),
    }


DOCUMENTS = [
    "The cat sat on the mat. The cat sat on the hat!\nA second line, with 42 numbers (and 7).",
    "Café crème — déjà vu… “Quoted” text ends here”\n\n  indented line?\n",
    "UPPER CASE LINE\nlower case line\nMixed Case 2024: 3.14% of it...\n\nend",
    "one two three one two three one two three four",
    "Don't stop; it's U.S.-made e.g. the well-known 1,000-page book.\n\n\n",
    "x",
    "!!! ??? ...",
    "   \n\t\n",
]


def ours(texts: list[str]) -> dict[str, list[float]]:
    load_builtin()
    batch = pa.record_batch([pa.array(texts, pa.string())], names=["text"])
    return {k: v.to_pylist() for k, v in SCORERS["redpajama"]().score(batch).items()}


def assert_matches(texts: list[str]) -> None:
    got = ours(texts)
    for row, text in enumerate(texts):
        for column, expected in reference(text).items():
            value = got[column][row]
            if isinstance(expected, float) and math.isnan(expected):
                assert math.isnan(value), (column, text)
            else:
                assert value == pytest.approx(expected, rel=1e-5, abs=1e-6), (column, text)


def test_matches_reference_on_examples() -> None:
    assert_matches(DOCUMENTS)


# ASCII letters, digits, punctuation, whitespace and lowercase accented letters: the range
# where our byte-level version is exact (non-ASCII case folding is not applied, see module).
alphabet = st.sampled_from(
    list(string.ascii_letters + string.digits + string.punctuation + " \n\t") + list("éàüñ”“…")
)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.text(alphabet, max_size=120), min_size=1, max_size=5))
def test_matches_reference_on_generated_text(texts: list[str]) -> None:
    assert_matches(texts)
