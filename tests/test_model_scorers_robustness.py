"""Every model-based scorer survives arbitrary unicode, empty and very long documents.

Checked for each shipped default: one output per row, the declared types, probabilities in
[0, 1], perplexities finite and > 0 (NaN only for a document without tokens), DSIR log
ratios finite, and null ``lang`` exactly where ``lang_score`` is NaN.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metamix.scorers.base import Scorer
from metamix.scorers.model_based.dsir import DsirScorer
from metamix.scorers.model_based.fasttext_quality import FastTextQualityScorer
from metamix.scorers.model_based.language_id import LangIdScorer
from metamix.scorers.model_based.ngram_perplexity import NgramPerplexityScorer

SCORERS: list[Scorer] = [FastTextQualityScorer(), DsirScorer(),
                         DsirScorer(length_normalized=True), NgramPerplexityScorer(),
                         LangIdScorer()]

texts = st.lists(st.one_of(st.text(max_size=300), st.none(),
                           st.sampled_from(["", " ", "\n\n", "\x00", "\u2028", "é" * 50])),
                 min_size=1, max_size=12)


def check(scorer: Scorer, docs: list[str | None]) -> None:
    out = scorer.score(pa.record_batch({"text": pa.array(docs, pa.string())}))
    schema = scorer.output_schema()
    assert list(out) == schema.names
    for field in schema:
        assert len(out[field.name]) == len(docs) and out[field.name].type == field.type
    for name, column in out.items():
        if name == "lang":
            continue
        x = column.to_numpy(zero_copy_only=False).astype(np.float64)
        has_tokens = np.array([bool(d and d.strip()) for d in docs])
        if name.endswith("_prob") or name == "lang_score":
            assert np.all((x >= 0) & (x <= 1) | np.isnan(x))
        if name == "lang_score":
            assert np.array_equal(np.isnan(x), np.array([v is None for v in
                                                         out["lang"].to_pylist()]))
        elif name.startswith("ngram_"):
            assert np.all(np.isnan(x) == np.array([not d for d in docs]))
            assert np.all(np.isfinite(x[has_tokens]))
            assert name.startswith("ngram_logprob") or np.all(x[has_tokens] > 0)
        else:
            assert np.all(np.isfinite(x))


@pytest.mark.parametrize("scorer", SCORERS, ids=lambda s: f"{s.name}-{id(s) % 1000}")
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(docs=texts)
def test_arbitrary_unicode(scorer: Scorer, docs: list[str | None]) -> None:
    check(scorer, docs)


@pytest.mark.parametrize("scorer", SCORERS, ids=lambda s: f"{s.name}-{id(s) % 1000}")
def test_empty_batch_and_very_long_documents(scorer: Scorer) -> None:
    check(scorer, [""])
    rng = np.random.default_rng(0)
    random_chars = "".join(map(chr, rng.integers(32, 0x2FFF, size=200_000)))
    one_token = "a" * 1_000_000
    check(scorer, [random_chars, one_token, "word " * 100_000, ""])
    assert all(len(v) == 0 for v in
               scorer.score(pa.record_batch({"text": pa.array([], pa.string())})).values())
