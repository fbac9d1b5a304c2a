"""Every drop reason is reachable with a crafted document, and a clean document is kept.

The crafted documents were also checked against datatrove 0.10 itself (same reasons).
"""

from __future__ import annotations

import pyarrow as pa
import pytest

from metamix.scorers.registry import SCORERS, load_builtin

CLEAN = (
    "The quick brown fox jumps over the lazy dog near the river bank today.\n"
    "Scientists have discovered a new species of frog in the rainforest of Peru.\n"
    "Local markets sell fresh bread, cheese and vegetables to visitors every morning.\n"
    "Students gathered in the library to prepare for their final examinations together.\n"
    "The old lighthouse has guided ships safely into the harbour for two centuries.\n"
    "Engineers tested the bridge with heavy trucks before opening it to the public."
)
LOREM = "Lorem ipsum dolor sit amet, consectetur adipiscing."
NO_WHOLE_TEXT_RULES = {
    "dup_line_frac": None,
    "dup_para_frac": None,
    "dup_line_char_frac": None,
    "dup_para_char_frac": None,
}


def reason(family: str, text: str, **params: object) -> str | None:
    load_builtin()
    scorer = SCORERS[family](**params)
    batch = pa.record_batch([pa.array([text], pa.string())], names=["text"])
    return scorer.score(batch)[scorer.drop_reason_column].to_pylist()[0]


@pytest.mark.parametrize("family", ["gopher_quality", "gopher_repetition", "c4", "fineweb"])
def test_clean_document_is_kept(family: str) -> None:
    assert reason(family, CLEAN) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello world.", "gopher_short_doc"),
        ("the word " * 50_001, "gopher_long_doc"),
        (" ".join(["an a of to the and"] * 10), "gopher_below_avg_threshold"),
        (" ".join(["internationalization"] * 55 + ["the", "and"]), "gopher_above_avg_threshold"),
        (" ".join(["word"] * 55 + ["#a"] * 10 + ["the", "and"]), "gopher_too_many_hashes"),
        (" ".join(["word..."] * 60 + ["the", "and"]), "gopher_too_many_ellipsis"),
        ("\n".join(["- the cat sat here and there"] * 60), "gopher_too_many_bullets"),
        (
            "\n".join(
                [" ".join(["the word and more"] * 5) + "…"] * 4
                + [" ".join(["the dog and more"] * 5)] * 6
            ),
            "gopher_too_many_end_ellipsis",
        ),
        (" ".join(["123 the word"] * 20 + ["456 789 and"] * 10), "gopher_below_alpha_threshold"),
        (" ".join(["cat dog bird fish"] * 15), "gopher_enough_stop_words"),
    ],
)
def test_gopher_quality_reasons(text: str, expected: str) -> None:
    assert reason("gopher_quality", text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "empty"),
        ("A one.\n\nA one.\n\nB two.", "dup_para_frac"),
        (
            "This long paragraph is repeated below verbatim here.\n\nx\n\ny\n\n"
            "This long paragraph is repeated below verbatim here.",
            "dup_para_char_frac",
        ),
        ("x\ny\nx", "dup_line_frac"),
        (
            "This long line is repeated below verbatim here.\na\nb\n"
            "This long line is repeated below verbatim here.",
            "dup_line_char_frac",
        ),
        ("hello world", "top_2_gram"),
    ],
)
def test_gopher_repetition_reasons(text: str, expected: str) -> None:
    assert reason("gopher_repetition", text) == expected


@pytest.mark.parametrize(("size", "threshold"), [(3, 0.18), (4, 0.16)])
def test_gopher_repetition_top_ngram_reasons(size: int, threshold: float) -> None:
    # a single n-gram covers the whole text; only this rule is enabled
    text = " ".join(["alpha", "bravo", "charlie", "delta"][:size])
    params = dict(NO_WHOLE_TEXT_RULES, top_n_grams=((size, threshold),), dup_n_grams=())
    assert reason("gopher_repetition", text, **params) == f"top_{size}_gram"


@pytest.mark.parametrize("size", [5, 6, 7, 8, 9, 10])
def test_gopher_repetition_duplicated_ngram_reasons(size: int) -> None:
    words = [f"word{i}" for i in range(size)]
    text = " ".join(words + words)  # the second half repeats the first: ~50% of characters
    params = dict(NO_WHOLE_TEXT_RULES, top_n_grams=(), dup_n_grams=((size, 0.15),))
    assert reason("gopher_repetition", text, **params) == f"duplicated_{size}_n_grams"
    assert reason("gopher_repetition", " ".join(words), **params) is None


def test_gopher_repetition_whitespace_only_is_not_empty() -> None:
    # datatrove only calls "" empty; whitespace has no words, so no rule fires
    assert reason("gopher_repetition", "  \n \t ") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (CLEAN + "\n" + LOREM, "lorem_ipsum"),
        ("The value is {x} for this example here.\n" + CLEAN + "\n" + LOREM, "curly_bracket"),
        ("Hello world.", "too_few_sentences"),
        ("", "too_few_sentences"),
        # a "{" on a line that is dropped anyway (no terminal punctuation) does not count
        ("if (x) { return y }\n" + CLEAN, None),
        # nor on a javascript line, which is dropped before the bracket check
        ("Enable javascript to see {this} page.\n" + CLEAN, None),
    ],
)
def test_c4_reasons(text: str, expected: str | None) -> None:
    assert reason("c4", text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "empty"),
        ("  \n \t ", "empty"),
        ("\n".join(f"hello world number {i}" for i in range(10)), "line_punct_ratio"),
        (
            "Hi there.\nOk then.\nYes sir.\nThis is a much longer line that ends with a period.",
            "short_line_ratio",
        ),
        (
            "This is a long line number one here.\nThis is a long line number one here.\n"
            "Another long line that is unique here.",
            "char_dup_ratio",
        ),
        ("\n".join(f"Supercalifragilisticexpialidocious{i}." for i in range(10)), "list_ratio"),
    ],
)
def test_fineweb_reasons(text: str, expected: str) -> None:
    assert reason("fineweb", text) == expected


def test_fineweb_exclude_zero_punct_lines() -> None:
    text = "\n".join(f"hello world number {i}" for i in range(10))
    assert reason("fineweb", text, line_punct_exclude_zero=True) != "line_punct_ratio"


def test_threshold_none_disables_gopher_rule() -> None:
    assert reason("gopher_quality", "Hello world.", min_doc_words=None) != "gopher_short_doc"
