"""Model-based scorers: hand-computed values on toys, shipped models, determinism, wiring."""

from __future__ import annotations

import itertools
import math
import pickle
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from metamix.scorers.model_based import dsir as dsir_mod
from metamix.scorers.model_based._common import MODELS_DIR
from metamix.scorers.model_based.dsir import DsirScorer, fit_bucket_counts, save_dsir_model
from metamix.scorers.model_based.fasttext_quality import (
    FastTextQualityScorer,
    train_quality_classifier,
)
from metamix.scorers.model_based.hashed_ngrams import hash_strings, wordpunct_tokens
from metamix.scorers.model_based.kneser_ney import (
    BackoffNgramModel,
    KneserNeyModel,
    fit_kneser_ney,
    windows,
)
from metamix.scorers.model_based.language_id import LangIdScorer
from metamix.scorers.model_based.ngram_perplexity import DEFAULT_TOKENIZER, NgramPerplexityScorer

ENGLISH = "The weather is lovely today, and we are going to walk along the river after lunch."
GERMAN = "Das Wetter ist heute schön, und wir gehen nach dem Mittagessen am Fluss spazieren."
FRENCH = "Il fait beau aujourd'hui, et nous allons nous promener le long de la rivière."


def batch(texts: list[str | None]) -> pa.RecordBatch:
    return pa.record_batch({"text": pa.array(texts, pa.string())})


# --- hashing and DSIR ------------------------------------------------------------------------

def test_wordpunct_tokens_lowercase_and_split_punctuation() -> None:
    tokens, rows = wordpunct_tokens(pa.array(["Hello, World!!", "", "naïve x_1"]))
    assert tokens.to_pylist() == ["hello", ",", "world", "!!", "naïve", "x_1"]
    assert rows.tolist() == [0, 0, 0, 0, 2, 2]


def test_hash_is_content_only() -> None:
    # The same token hashes the same wherever it sits in a (sliced) array.
    a = pa.array(["zz", "alpha", "beta", "alpha"]).slice(1)
    h = hash_strings(a)
    assert h[0] == h[2] != h[1]
    assert hash_strings(pa.array(["alpha"]))[0] == h[0]


def test_dsir_log_ratio_matches_hand_computation(tmp_path: Path) -> None:
    # target = {"a b"}: features a, b, (a b) -> N_t = 3; raw = {"a b", "c"} -> N_r = 4.
    # Add-one smoothing over B buckets: p_t(a) = 2/(3+B), p_r(a) = 2/(4+B), p_t(c) = 1/(3+B).
    buckets = 1000
    target = fit_bucket_counts(["a b"], buckets)
    raw = fit_bucket_counts(["a b", "c"], buckets)
    assert target.sum() == 3 and raw.sum() == 4 and np.count_nonzero(raw) == 4  # no collision
    path = tmp_path / "toy.npz"
    save_dsir_model(path, target, raw, {"toy": True})
    scorer = DsirScorer(model_path=str(path), target_name="toy")
    got = scorer.score(batch(["a", "c", "a b", "", None]))["dsir_toy_logratio"].to_numpy()
    one = math.log(1004 / 1003)
    want = [one, math.log((1 / 1003) / (2 / 1004)), 3 * one, 0.0, 0.0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-9)
    normalized = DsirScorer(model_path=str(path), target_name="toy", length_normalized=True)
    got = normalized.score(batch(["a b"]))["dsir_toy_logratio"].to_numpy()
    np.testing.assert_allclose(got, [one], rtol=1e-5)


def test_shipped_dsir_prefers_book_prose_to_code() -> None:
    scorer = DsirScorer()
    prose = "And the king said unto his servants, Go ye and gather the people together."
    code = "def main(argv):\n    for i in range(len(argv)):\n        print(argv[i])\n"
    got = scorer.score(batch([prose, code]))["dsir_books_reference_logratio"].to_numpy()
    assert got[0] > 0 > got[1]
    assert dsir_mod.DEFAULT_BUCKETS == 10_000


# --- Kneser-Ney ------------------------------------------------------------------------------

def test_kneser_ney_bigram_matches_hand_computed_values() -> None:
    # ids: 0 = pad, 1 = a, 2 = b, 3 = c; docs "a b a b" and "a c"; fixed D = 0.5.
    # bigram counts: (0,a)=2 (a,b)=2 (b,a)=1 (a,c)=1
    # continuation counts: a: 2, b: 1, c: 1 -> total 4, gamma1 = 3*0.5/4
    # p1(a) = 1.5/4 + 0.375/4 = 0.46875, p1(b) = p1(c) = 0.5/4 + 0.375/4 = 0.21875
    # context a: total 3, gamma = (0.5 + 0.5)/3
    # p(b|a) = 1.5/3 + 0.21875/3, p(c|a) = 0.5/3 + 0.21875/3; unseen context c -> p1(a)
    docs = [np.array([1, 2, 1, 2]), np.array([1, 3])]
    model = fit_kneser_ney(windows(docs, 2, 0), 4, min_count=1, discount=0.5)
    got = np.exp(model.logprob(np.array([[1, 2], [1, 3], [1, 1], [3, 1], [1, 0]])))
    want = [1.5 / 3 + 0.21875 / 3, 0.5 / 3 + 0.21875 / 3, 0.46875 / 3, 0.46875, 0.09375 / 3]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def _skewed_docs(seed: int, vocab: int = 6) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    p = np.arange(vocab, 0, -1) ** 2 / np.sum(np.arange(vocab, 0, -1) ** 2)
    return [rng.choice(vocab, size=rng.integers(1, 30), p=p) for _ in range(50)]


@pytest.mark.parametrize(("min_count", "step"), [(1, None), (2, None), (3, 1 / 64)])
def test_kneser_ney_distributions_sum_to_one(min_count: int, step: float | None,
                                             tmp_path: Path) -> None:
    vocab, order = 6, 3
    model = fit_kneser_ney(windows(_skewed_docs(0, vocab), order, 0), vocab,
                           min_count=min_count, logp_step=step)
    model.save(tmp_path / "m.npz")
    loaded = BackoffNgramModel.load(tmp_path / "m.npz")
    every = np.array(list(itertools.product(range(vocab), repeat=order)))
    # With quantization, a context whose kept n-grams cover the whole vocabulary has nothing
    # to back off to and may sum to less than 1 by the rounding (at most exp(-step)).
    kept = np.isin(every[:, :-1] @ [vocab, 1] * vocab + every[:, -1], model.gram_keys[-1])
    full = kept.reshape(-1, vocab).all(axis=1) & (step is not None)
    for m, tol in ((model, 1e-12), (loaded, 1e-5)):
        totals = np.exp(m.logprob(every)).reshape(-1, vocab).sum(axis=1)
        np.testing.assert_allclose(totals[~full], 1.0, atol=tol)
        assert np.all((totals[full] <= 1 + tol) & (totals[full] >= math.exp(-(step or 0)) - tol))
    assert np.all(np.isfinite(loaded.logprob(every)))


def test_kneser_ney_training_is_deterministic_and_prunes() -> None:
    win = windows(_skewed_docs(1), 3, 0)
    a, b = fit_kneser_ney(win, 6), fit_kneser_ney(win, 6)
    for x, y in zip(a.gram_keys + a.gram_logp, b.gram_keys + b.gram_logp, strict=True):
        np.testing.assert_array_equal(x, y)
    assert a.n_entries() < fit_kneser_ney(win, 6, min_count=1).n_entries()


def test_unpruned_backoff_model_equals_interpolated_model() -> None:
    # One estimator, two query forms: with min_count=1 nothing backs off to a pruned level,
    # so the ARPA-like model is the interpolated one (the ngram proxy's) up to rounding.
    vocab, order = 6, 3
    win = windows(_skewed_docs(2, vocab), order, 0)
    every = np.array(list(itertools.product(range(vocab), repeat=order)))
    for discount in (None, 0.7):
        backoff = fit_kneser_ney(win, vocab, min_count=1, discount=discount)
        interpolated = KneserNeyModel(order, vocab, discount).fit(win)
        np.testing.assert_allclose(np.exp(backoff.logprob(every)), interpolated.prob(every),
                                   rtol=1e-10)


def test_backoff_model_needs_exact_keys() -> None:
    with pytest.raises(ValueError, match="exact keys"):
        fit_kneser_ney(windows(_skewed_docs(3), 4, 0), 3_000_000)


def test_shipped_ngram_model_prefers_prose_and_nans_empty(tmp_path: Path) -> None:
    scorer = NgramPerplexityScorer()
    prose = "And it came to pass, when the king heard these words, that he rent his clothes."
    noise = "zq xv 7#k@ pl!! qqq wzx 19x8 ~~ vvbn ^^ jjjk kq"
    out = scorer.score(batch([prose, noise, ""]))
    ppl = out["ngram_ppl_books_reference_technical"].to_numpy(zero_copy_only=False)
    lp = out["ngram_logprob_books_reference_technical"].to_numpy(zero_copy_only=False)
    assert 1 < ppl[0] < ppl[1] < np.inf
    np.testing.assert_allclose(ppl[:2], np.exp(-lp[:2]), rtol=1e-5)
    assert np.isnan(ppl[2]) and np.isnan(lp[2])
    other = tmp_path / "tok.json"
    other.write_text((MODELS_DIR / DEFAULT_TOKENIZER).read_text() + "\n")
    with pytest.raises(ValueError, match="sha256"):
        NgramPerplexityScorer(tokenizer_path=str(other)).score(batch(["x"]))


# --- fastText --------------------------------------------------------------------------------

def _toy_docs(words: list[str], n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(words, size=12)) for _ in range(n)]


GOOD = ["theorem", "proof", "analysis", "measured", "results", "equation", "evidence",
        "method", "study"]
BAD = ["click", "buy", "cheap", "free", "winner", "offer", "deal", "subscribe", "now"]


def test_fasttext_toy_classifier_ranks_and_is_deterministic(tmp_path: Path) -> None:
    pos, neg = _toy_docs(GOOD, 60, 0), _toy_docs(BAD, 60, 1)
    paths = [train_quality_classifier(pos, neg, tmp_path / f"m{i}.bin", epoch=20, bucket=1000,
                                      quantize=False) for i in range(2)]
    assert paths[0].read_bytes() == paths[1].read_bytes()
    scorer = FastTextQualityScorer(model_path=str(paths[0]))
    held_out = batch([" ".join(GOOD[::-1]), " ".join(BAD[::-1]) + "\n" + BAD[0]])
    p = scorer.score(held_out)["dclm_fasttext_hq_prob"].to_numpy()
    assert p[0] > 0.5 > p[1]


def test_shipped_fasttext_prefers_reference_to_web_noise() -> None:
    scorer = FastTextQualityScorer()
    ref = ("Photosynthesis is the process by which green plants convert light energy into "
           "chemical energy, producing oxygen as a by-product. It takes place in chloroplasts.")
    web = "Home | About | Contact | Login\nPrevious topic | Next topic | Show Source\n© 2023"
    p = scorer.score(batch([ref, web]))["dclm_fasttext_hq_prob"].to_numpy()
    assert p[0] > p[1]


# --- langid ----------------------------------------------------------------------------------

def test_langid_labels_and_matches_reference_implementation() -> None:
    from langid.langid import LanguageIdentifier, model

    reference = LanguageIdentifier.from_modelstring(model, norm_probs=True)
    texts = [ENGLISH, GERMAN, FRENCH, "", "  ... !!! ", None]
    out = LangIdScorer().score(batch(texts))
    assert out["lang"].to_pylist() == ["en", "de", "fr", None, None, None]
    scores = out["lang_score"].to_numpy(zero_copy_only=False)
    for text, score in zip(texts[:3], scores[:3], strict=True):
        assert score == pytest.approx(reference.classify(text)[1], abs=1e-5)
    assert np.isnan(scores[3:]).all()


def test_langid_language_subset() -> None:
    out = LangIdScorer(languages=["de", "fr"]).score(batch([ENGLISH, GERMAN]))
    assert set(out["lang"].to_pylist()) <= {"de", "fr"}
    assert out["lang"].to_pylist()[1] == "de"


# --- wiring ----------------------------------------------------------------------------------

def test_pipeline_builds_scorers_from_config_params_and_pickles() -> None:
    from metamix.pipeline.config import ScorerSpec
    from metamix.pipeline.scorer_specs import build_scorers

    specs = [ScorerSpec(name="dsir", params={"length_normalized": True}),
             ScorerSpec(name="langid", params={"max_chars": 300, "languages": ["en", "de"]}),
             ScorerSpec(name="ngram_perplexity", params={"max_chars": 5000}),
             ScorerSpec(name="dclm_fasttext", params={})]
    built = build_scorers(specs)
    assert built[1].params() == {"max_chars": 300, "languages": ["en", "de"]}
    for scorer in built:
        out = scorer.score(batch([ENGLISH, ""]))
        assert list(out) == scorer.output_schema().names
        clone = pickle.loads(pickle.dumps(scorer))
        assert not any(k.startswith("_cached") for k in vars(clone))
        assert clone.score(batch([ENGLISH]))[scorer.output_schema().names[0]].to_pylist() \
            == out[scorer.output_schema().names[0]].to_pylist()[:1]
