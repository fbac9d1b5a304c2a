"""Interpolated modified Kneser–Ney n-gram proxy over BPE ids, fully vectorized in numpy.

Why an n-gram: it trains in about a second on a few million tokens, is deterministic, and
ranks data subsets much like a small transformer does, which makes K = 128 proxy runs
affordable on a laptop.

The model itself (estimation, windows, key encoding with hashing for large V**n) lives in
``scorers/model_based/kneser_ney.py`` and is shared with the ``ngram_perplexity`` scorer;
the proxy uses its unpruned interpolated form, ``KneserNeyModel``. Every document (training
and validation) is left-padded with n-1 ``<|endoftext|>`` ids, so n-grams never span two
documents and the first token is predicted from a start context.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from metamix.mixtures.proxies.base import (
    ProxyError,
    ProxyResult,
    ProxyTrainer,
    TrainingData,
    ValidationSet,
    losses_from_logprobs,
)
from metamix.scorers.model_based.kneser_ney import KneserNeyModel, windows

__all__ = ["KneserNeyModel", "NgramTrainer", "windows"]


class NgramTrainer(ProxyTrainer):
    """Kneser–Ney n-gram proxy (``order`` 3 by default; ``discount`` None = modified KN)."""

    name = "ngram"

    def __init__(self, order: int = 3, discount: float | None = None,
                 min_discount: float = 0.05) -> None:
        self.order = order
        self.discount = discount
        self.min_discount = min_discount

    def fit_evaluate(self, train: TrainingData, validation: ValidationSet, *,
                     return_logprobs: bool = False, work_dir: Path | None = None) -> ProxyResult:
        start = time.perf_counter()
        corpus = train.load()
        docs = train.documents()
        win = windows(docs, self.order, corpus.eos_id)
        if len(win) == 0:
            raise ProxyError("no training tokens")
        model = KneserNeyModel(self.order, corpus.vocab_size, self.discount,
                               self.min_discount).fit(win)
        val = validation.load()
        if val.vocab_size != corpus.vocab_size:
            raise ProxyError("training and validation caches use different tokenizers")
        logprobs = np.log(model.prob(windows(val.docs(), self.order, val.eos_id)))
        losses, mean = losses_from_logprobs(val, logprobs)
        return ProxyResult(losses=losses, mean_loss=mean,
                           n_train_tokens=int(len(win)),
                           seconds=time.perf_counter() - start,
                           token_logprobs=logprobs if return_logprobs else None)
