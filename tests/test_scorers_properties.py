"""Property tests: arbitrary text never breaks a family, and values stay in range.

Fractions are in [0, 1] or NaN where documented (no words / no lines / empty text); counts
are >= 0 and never null; ratios with an unbounded numerator (hashes per word, newlines per
word, top n-gram characters which overlap) are >= 0 or NaN.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metamix.scorers.registry import SCORERS, load_builtin

UNBOUNDED = {
    "gopher_mean_word_length",
    "gopher_hash_word_ratio",
    "gopher_ellipsis_word_ratio",
    "fineweb_list_ratio",
    "rps_doc_mean_word_length",
    "rps_doc_unigram_entropy",
}
REASONS = {
    "gopher_quality": {
        "gopher_short_doc",
        "gopher_long_doc",
        "gopher_below_avg_threshold",
        "gopher_above_avg_threshold",
        "gopher_too_many_hashes",
        "gopher_too_many_ellipsis",
        "gopher_too_many_bullets",
        "gopher_too_many_end_ellipsis",
        "gopher_below_alpha_threshold",
        "gopher_enough_stop_words",
    },
    "gopher_repetition": {
        "empty",
        "dup_para_frac",
        "dup_para_char_frac",
        "dup_line_frac",
        "dup_line_char_frac",
        *(f"top_{n}_gram" for n in (2, 3, 4)),
        *(f"duplicated_{n}_n_grams" for n in range(5, 11)),
    },
    "c4": {"lorem_ipsum", "curly_bracket", "too_few_sentences"},
    "fineweb": {"empty", "line_punct_ratio", "short_line_ratio", "char_dup_ratio", "list_ratio"},
}

# Unicode without surrogates, biased towards characters the rules care about.
tricky = st.sampled_from(
    list(" \t\n\r\x0b\x0c\x1c\x85\xa0\u2028\u3000.!?…#-•'’\"{}[]()/:;,_$%0123456789")
    + ["...", "\r\n", "\n\n", "n't", "'s", "e.g.", ":)", "lorem ipsum", "javascript", "[1]"]
)
text_strategy = st.lists(
    st.one_of(st.text(st.characters(exclude_categories=("Cs",)), max_size=20), tricky),
    max_size=40,
).map("".join)


def check_family(name: str, texts: list[str | None]) -> None:
    scorer = SCORERS[name]()
    batch = pa.record_batch([pa.array(texts, pa.string())], names=["text"])
    out = scorer.score(batch)
    assert list(out) == scorer.output_schema().names
    for column, values in out.items():
        assert len(values) == len(texts)
        if column.endswith("_drop_reason"):
            assert set(values.to_pylist()) <= REASONS[name] | {None}
            continue
        assert values.null_count == 0, column
        data = values.to_numpy(zero_copy_only=False)
        if pa.types.is_integer(values.type):
            assert (data >= 0).all(), column
        elif pa.types.is_floating(values.type):
            finite = data[~np.isnan(data)]
            assert np.isfinite(finite).all(), column
            assert (finite >= 0).all(), column
            if column not in UNBOUNDED and "top_" not in column:
                assert (finite <= 1 + 1e-6).all(), column


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(text_strategy, min_size=1, max_size=8))
def test_arbitrary_text_never_raises(texts: list[str]) -> None:
    load_builtin()
    for name in ("redpajama", "gopher_quality", "gopher_repetition", "c4", "fineweb"):
        check_family(name, texts)


def test_empty_whitespace_null_and_long_documents() -> None:
    load_builtin()
    long_doc = ("All work and no play makes Jack a dull boy. " * 20_000) + "\n" + "x" * 5_000
    texts = ["", "   ", "\n\n\n", None, "\x00\x01\x02", "😀" * 100, long_doc]
    for name in ("redpajama", "gopher_quality", "gopher_repetition", "c4", "fineweb"):
        check_family(name, texts)


def test_empty_batch() -> None:
    load_builtin()
    for name in ("redpajama", "gopher_quality", "gopher_repetition", "c4", "fineweb"):
        check_family(name, [])


def test_nan_only_where_documented() -> None:
    load_builtin()
    batch = pa.record_batch([pa.array(["", "Some words here."])], names=["text"])
    out = SCORERS["redpajama"]().score(batch)
    assert math.isnan(out["rps_doc_mean_word_length"][0].as_py())
    assert not any(math.isnan(v[1].as_py()) for v in out.values() if pa.types.is_floating(v.type))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text(max_size=30), min_size=1, max_size=6))
def test_the_word_scans_per_byte_flags_are_each_characters_flags(texts: list[str]) -> None:
    """The tokenizer scan looks up a neighbour's flags by byte position: the character
    starting there (ASCII table or its code point's flags), 0 on continuation bytes."""
    from metamix.scorers._charclass import (
        ASCII_FLAGS,
        _flags_of_code_points,
        byte_classes,
        utf8_buffer,
    )
    from metamix.scorers._token_scan import _char_flags

    data, size, _ = utf8_buffer(pa.array(texts, pa.string()))
    classes = byte_classes(data, size)
    got = _char_flags(data, size, classes.leads, classes.lead_flags, ASCII_FLAGS)
    expected = []  # per character, from its code point, not from the batch's decoding
    for char in "".join(texts):
        width = len(char.encode("utf-8"))
        flags = (ASCII_FLAGS[ord(char)] if width == 1
                 else _flags_of_code_points(np.array([ord(char)]))[0])
        expected += [int(flags)] + [0] * (width - 1)
    assert len(expected) == size
    assert got.tolist() == expected
