"""Kneser–Ney n-gram proxy: hand-computed values, normalization, a plain-Python reference."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from metamix.mixtures.proxies.ngram import KneserNeyModel, windows

PAD = 0


def test_bigram_matches_hand_computed_values() -> None:
    # ids: 0 = pad/eos, 1 = a, 2 = b, 3 = c; docs "a b a b" and "a c"; fixed D = 0.5.
    # bigram counts: (0,a)=2 (a,b)=2 (b,a)=1 (a,c)=1
    # continuation counts: a: {(0,a),(b,a)} = 2, b: 1, c: 1 -> total 4, gamma1 = 3*0.5/4
    # p1(a) = 1.5/4 + 0.375/4 = 0.46875, p1(b) = p1(c) = 0.5/4 + 0.375/4 = 0.21875
    # context a: total 3, gamma = (0.5 + 0.5)/3
    # p(b|a) = 1.5/3 + 0.21875/3, p(c|a) = 0.5/3 + 0.21875/3; unseen context c -> p1(a)
    docs = [np.array([1, 2, 1, 2]), np.array([1, 3])]
    model = KneserNeyModel(order=2, vocab_size=4, discount=0.5).fit(windows(docs, 2, PAD))
    got = model.prob(np.array([[1, 2], [1, 3], [1, 1], [3, 1], [1, 0]]))
    want = [1.5 / 3 + 0.21875 / 3, 0.5 / 3 + 0.21875 / 3, 0.46875 / 3, 0.46875, 0.09375 / 3]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def _random_docs(rng: np.random.Generator, vocab: int, n_docs: int) -> list[np.ndarray]:
    # A skewed distribution so counts of 1, 2, 3, 4+ all occur (modified discounts defined).
    probs = 1.0 / np.arange(1, vocab) ** 1.2
    probs /= probs.sum()
    return [rng.choice(np.arange(1, vocab), size=rng.integers(1, 30), p=probs)
            for _ in range(n_docs)]


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_conditional_distributions_sum_to_one(order: int) -> None:
    vocab = 9
    docs = _random_docs(np.random.default_rng(order), vocab, 40)
    model = KneserNeyModel(order=order, vocab_size=vocab).fit(windows(docs, order, PAD))
    seen = windows(docs, order, PAD)[:5, :-1]
    contexts = [*seen, np.full(order - 1, 8), np.full(order - 1, PAD)]
    for ctx in contexts:
        grid = np.column_stack([np.tile(ctx, (vocab, 1)), np.arange(vocab)]).astype(np.int64)
        p = model.prob(grid)
        assert np.all(p > 0)
        assert p.sum() == pytest.approx(1.0, abs=1e-12)


def _reference_prob(docs: list[np.ndarray], n: int, vocab: int, window: tuple[int, ...],
                    min_d: float = 0.05) -> float:
    """Textbook interpolated modified KN, written with dicts for clarity (slow)."""
    wins = [tuple(int(t) for t in row) for row in windows(docs, n, PAD)]
    p = 1.0 / vocab
    for k in range(1, n + 1):
        if k == n:
            counts = Counter(w[n - k:] for w in wins)
        else:
            counts = Counter(g[1:] for g in {w[n - k - 1:] for w in wins})
        cc = Counter(counts.values())
        n1, n2, n3, n4 = (cc[r] for r in range(1, 5))
        assert min(n1, n2, n3) > 0, "corpus too small for the modified-discount formula"
        y = n1 / (n1 + 2 * n2)
        ds = [0.0] + [min(max(d, min_d), r) for r, d in enumerate(
            [1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3], start=1)]
        ctx = window[n - k:n - 1]
        same_ctx = {g: c for g, c in counts.items() if g[:-1] == ctx}
        total = sum(same_ctx.values())
        if total == 0:
            continue
        mass = sum(ds[min(c, 3)] for c in same_ctx.values())
        c = same_ctx.get(window[n - k:], 0)
        p = max(c - ds[min(c, 3)], 0) / total + mass / total * p
    return p


def test_vectorized_model_matches_plain_python_reference() -> None:
    vocab, order = 150, 3
    rng = np.random.default_rng(0)
    docs = _random_docs(rng, vocab, 150)
    model = KneserNeyModel(order=order, vocab_size=vocab).fit(windows(docs, order, PAD))
    seen = windows(docs, order, PAD)[::7]
    unseen = rng.integers(0, vocab, size=(60, order))
    mixed = np.column_stack([unseen[:, :1], seen[:60, 1:]])   # seen suffix, unseen context
    queries = np.concatenate([seen, unseen, mixed])
    want = [_reference_prob(docs, order, vocab, tuple(int(t) for t in q)) for q in queries]
    np.testing.assert_allclose(model.prob(queries), want, rtol=1e-10)


def test_hashed_keys_used_for_large_vocab_give_same_probabilities() -> None:
    docs = _random_docs(np.random.default_rng(3), 9, 60)
    small = KneserNeyModel(order=3, vocab_size=9).fit(windows(docs, 3, PAD))
    huge = KneserNeyModel(order=3, vocab_size=3_000_000).fit(windows(docs, 3, PAD))
    q = windows(docs, 3, PAD)
    # Extra vocab ids change only the uniform floor 1/V, so compare with that removed.
    assert np.corrcoef(small.prob(q), huge.prob(q))[0, 1] > 0.999
    assert np.all(huge.prob(np.array([[5, 7, 2_999_999]])) > 0)


def test_unseen_tokens_get_finite_loss() -> None:
    model = KneserNeyModel(order=3, vocab_size=50).fit(windows([np.array([1, 2, 3])], 3, PAD))
    p = model.prob(np.array([[40, 41, 42], [1, 2, 49]]))
    assert np.all(np.isfinite(np.log(p))) and np.all(p > 0)
