"""Signal values on small documents, with the expected numbers worked out by hand."""

from __future__ import annotations

import math

import pyarrow as pa
import pytest

from metamix.scorers.registry import SCORERS, load_builtin


def score(name: str, texts: list[str], **params: object) -> dict[str, list]:
    load_builtin()
    scorer = SCORERS[name](**params)
    batch = pa.record_batch([pa.array(texts, pa.string())], names=["text"])
    return {column: values.to_pylist() for column, values in scorer.score(batch).items()}


def test_redpajama_signals_by_hand() -> None:
    out = score("redpajama", ["The cat sat. The dog ran!\nHello world"])
    # normalized words: the cat sat the dog ran hello world
    assert out["rps_doc_word_count"] == [8]
    # runs without . ! ? holding a word character: "The cat sat", " The dog ran", "\nHello world"
    assert out["rps_doc_num_sentences"] == [3]
    # lengths 3+3+3+3+3+3+5+5 = 28 over 8 words
    assert out["rps_doc_mean_word_length"][0] == pytest.approx(3.5)
    # 7 distinct words of 8
    assert out["rps_doc_frac_unique_words"][0] == pytest.approx(0.875)
    # "the" twice (p = 1/4), six words once (p = 1/8): 1/4 ln 4 + 6/8 ln 8
    assert out["rps_doc_unigram_entropy"][0] == pytest.approx(
        0.25 * math.log(4) + 0.75 * math.log(8), rel=1e-6
    )
    # WordPunct words: The cat sat . The dog ran ! Hello world -> 2 of 10 have no letter
    assert out["rps_doc_frac_no_alph_words"][0] == pytest.approx(0.2)
    # every bigram occurs once -> 0
    assert out["rps_doc_frac_chars_top_2gram"] == [0.0]
    # lines: "The cat sat. The dog ran!\n" (26 chars, 2 upper), "Hello world" (11 chars, 1 upper)
    assert out["rps_lines_uppercase_letter_fraction"][0] == pytest.approx((2 / 26 + 1 / 11) / 2)
    assert out["rps_lines_numerical_chars_fraction"] == [0.0]
    # first line ends with "!", second with "d"
    assert out["rps_lines_ending_with_terminal_punctution_mark"] == [0.5]


def test_redpajama_top_ngram_and_numbers() -> None:
    out = score("redpajama", ["one two one two three", "Call 555 now\nok"])
    # bigram "one two" twice: (3 + 3) * 2 chars over 3+3+3+3+5 = 17 word chars
    assert out["rps_doc_frac_chars_top_2gram"][0] == pytest.approx(12 / 17)
    # every trigram once -> 0
    assert out["rps_doc_frac_chars_top_3gram"][0] == 0.0
    # normalized lines "call 555 now" (3 digits of 12 chars) and "ok" (0 of 2)
    assert out["rps_lines_numerical_chars_fraction"][1] == pytest.approx((3 / 12 + 0) / 2)


def test_redpajama_undefined_on_empty_text() -> None:
    out = score("redpajama", [""])
    assert out["rps_doc_word_count"] == [0]
    assert out["rps_doc_num_sentences"] == [0]
    assert math.isnan(out["rps_doc_mean_word_length"][0])
    assert math.isnan(out["rps_doc_unigram_entropy"][0])
    assert math.isnan(out["rps_lines_uppercase_letter_fraction"][0])
    assert out["rps_doc_frac_chars_top_2gram"] == [0.0]


def test_gopher_quality_signals_by_hand() -> None:
    out = score("gopher_quality", ["# Title\nThe cat, the dog...\n- and a bird…"])
    # spaCy-like words: # Title The cat , the dog ... - and a bird …  (13)
    # with a non-punctuation character: Title The cat the dog and a bird (8)
    assert out["gopher_word_count"] == [8]
    # 5+3+3+3+3+3+1+4 = 25 characters over 8 words
    assert out["gopher_mean_word_length"][0] == pytest.approx(25 / 8)
    assert out["gopher_hash_word_ratio"][0] == pytest.approx(1 / 13)
    # one "..." and one "…"
    assert out["gopher_ellipsis_word_ratio"][0] == pytest.approx(2 / 13)
    # 3 lines: one starts with "-", two end with an ellipsis
    assert out["gopher_bullet_lines_ratio"][0] == pytest.approx(1 / 3)
    assert out["gopher_end_ellipsis_lines_ratio"][0] == pytest.approx(2 / 3)
    assert out["gopher_alpha_words_ratio"][0] == pytest.approx(8 / 13)
    # "the" and "and" (case-sensitive: "The" does not count)
    assert out["gopher_stop_word_count"] == [2]
    assert out["gopher_quality_drop_reason"] == ["gopher_short_doc"]


def test_gopher_stop_words_are_distinct_per_document() -> None:
    texts = ["the cat The dog the cat", "", "dog dogs", "cat"]
    out = score("gopher_quality", texts, stop_words=["The", "the", "cat", "cat", "dog"])
    # row 0: the, cat, The, dog (repeats count once); row 2: "dogs" is not "dog"
    assert out["gopher_stop_word_count"] == [4, 0, 1, 1]
    assert score("gopher_quality", texts, stop_words=[])["gopher_stop_word_count"] == [0] * 4


def test_gopher_repetition_signals_by_hand() -> None:
    text = "a b c\n\nx y\n\na b c"  # 17 characters
    out = score("gopher_repetition", [text])
    # paragraphs and lines: "a b c", "x y", "a b c" -> one repeat of 5 characters
    assert out["gopher_rep_dup_para_frac"][0] == pytest.approx(1 / 3)
    assert out["gopher_rep_dup_para_char_frac"][0] == pytest.approx(5 / 17)
    assert out["gopher_rep_dup_line_frac"][0] == pytest.approx(1 / 3)
    assert out["gopher_rep_dup_line_char_frac"][0] == pytest.approx(5 / 17)
    # "a b" and "b c" both occur twice; the earlier wins: 3 chars * 2
    assert out["gopher_rep_top_2gram_char_frac"][0] == pytest.approx(6 / 17)
    # "a b c" twice: 5 * 2
    assert out["gopher_rep_top_3gram_char_frac"][0] == pytest.approx(10 / 17)
    # all 4-grams unique: the first, "a b c x" (7 chars), once
    assert out["gopher_rep_top_4gram_char_frac"][0] == pytest.approx(7 / 17)
    assert out["gopher_rep_dup_5gram_char_frac"] == [0.0]


def test_gopher_repetition_duplicated_ngrams_jump_ahead() -> None:
    # 6 words repeated: w1..w6 w1..w6. 5-grams at positions 6 and 7 repeat positions 0, 1;
    # the scan takes position 6 (5 words) and jumps to 11, past the end: 5 words counted.
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]
    text = " ".join(words + words)
    out = score("gopher_repetition", [text])
    repeated_chars = sum(len(w) for w in words[:5])
    assert out["gopher_rep_dup_5gram_char_frac"][0] == pytest.approx(repeated_chars / len(text))
    # the 6-gram at position 6 repeats position 0: all 6 words
    assert out["gopher_rep_dup_6gram_char_frac"][0] == pytest.approx(
        sum(len(w) for w in words) / len(text)
    )


def test_c4_signals_by_hand() -> None:
    text = (
        "Hello world, this is fine. Second sentence here!\n"  # kept, 2 sentences
        "short line.\n"  # 2 words: dropped
        "This line has no punctuation\n"  # no terminal mark: dropped
        "The javascript line is removed.\n"  # javascript: dropped
        "Another good line is here. Yes it is."  # kept, 2 sentences
    )
    out = score("c4", [text])
    assert out["c4_lines_kept_frac"][0] == pytest.approx(2 / 5)
    assert out["c4_num_sentences"] == [4]
    assert out["c4_has_lorem_ipsum"] == [False]
    assert out["c4_drop_reason"] == ["too_few_sentences"]


def test_c4_citations_removed_before_punctuation_check() -> None:
    # "[1]" is removed, so the first line ends with "." and is kept; the second ends with
    # ". " after removal (the line was stripped before), so it is dropped.
    out = score("c4", ["One two three four.[1]\nFive six seven eight. [2]"])
    assert out["c4_lines_kept_frac"][0] == pytest.approx(1 / 2)
    assert out["c4_num_sentences"] == [1]


def test_fineweb_signals_by_hand() -> None:
    text = "Hello there.\nshort\n\nThis is a longer line that ends here.\nshort\n"
    out = score("fineweb", [text])
    # non-blank lines: "Hello there.", "short", "This is ... here." (37 chars), "short"
    assert out["fineweb_line_punct_ratio"] == [0.5]
    assert out["fineweb_short_line_ratio"] == [0.75]
    # repeated "short" (5 chars) over 64 - 5 newlines = 59 characters
    assert out["fineweb_char_dup_ratio"][0] == pytest.approx(5 / 59)
    # 5 newlines over 14 words (Hello there . short This is a longer line that ends here . short)
    assert out["fineweb_list_ratio"][0] == pytest.approx(5 / 14)
    assert out["fineweb_drop_reason"] == ["short_line_ratio"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Don't stop, it's U.S. policy (e.g. this).",
            ["Do", "n't", "stop", ",", "it", "'s", "U.S.", "policy", "(", "e.g.", "this", ")", "."],
        ),
        ("well-known 10-20 3.14 $5", ["well", "-", "known", "10", "-", "20", "3.14", "$", "5"]),
        (
            "see https://example.com/a?b=1). ok",
            ["see", "https://example.com/a?b=1", ")", ".", "ok"],
        ),
        ("\\p{Script} /usr/bin C++ :)", ["\\p{Script", "}", "/usr", "/", "bin", "C++", ":)"]),
        ("Wait... what…", ["Wait", "...", "what", "…"]),
    ],
)
def test_word_splitting_follows_spacy(text: str, expected: list[str]) -> None:
    """The spaCy-like tokenizer behind the Gopher/FineWeb word counts (cases checked
    against spaCy's blank English tokenizer)."""
    from metamix.scorers._tokens import tokenize_bytes

    assert tokenize_bytes(pa.array([text])).texts() == expected


def test_word_splitting_of_long_chunks_and_empty_rows() -> None:
    """One 604-byte chunk of 601 tokens (past the kernel's first scratch and output sizes,
    so it stops, grows its arrays and resumes) between empty and blank rows."""
    from metamix.scorers._tokens import tokenize_bytes

    long_chunk = "(" * 300 + "word" + ")" * 300
    tokens = tokenize_bytes(pa.array(["", "  \n", long_chunk, "", "a b,", "Mr. x"]))
    assert tokens.texts() == ["("] * 300 + ["word"] + [")"] * 300 + ["a", "b", ",", "Mr.", "x"]
    assert tokens.row.tolist() == [2] * 601 + [4, 4, 4, 5, 5]
    assert tokens.n_chars.tolist() == [1] * 300 + [4] + [1] * 303 + [3, 1]


def test_long_words_differing_anywhere_are_different_words() -> None:
    """Words over 24 bytes are identified by every byte, not a sample of them: these two
    differ only in bytes 8-15, which the first/middle/last 8-byte words do not cover."""
    from metamix.scorers._hashing import token_hash

    first = "aaaaaaaa11111111cccccccc22222222eeeeeeee"
    second = first.replace("11111111", "33333333")
    assert token_hash(first) != token_hash(second)
    out = score("redpajama", [f"{first} {second}", f"{first} {first}"])
    assert out["rps_doc_frac_unique_words"] == [1.0, 0.5]
