"""Proxy trainers: small models whose validation loss ranks candidate training sets.

``make_trainer("ngram", {"order": 3})`` builds one from a config; every trainer shares
the ``ProxyTrainer.fit_evaluate(TrainingData, ValidationSet) -> ProxyResult`` interface.
The gpt trainer imports torch lazily, so n-gram sweeps never pay for it.
"""

from __future__ import annotations

from typing import Any

from metamix.mixtures.proxies.base import (
    ProxyError,
    ProxyResult,
    ProxyTrainer,
    TrainingData,
    ValidationSet,
    ValidationTokens,
    losses_from_logprobs,
)
from metamix.mixtures.proxies.tokens import TokenizedCorpus, build_token_cache, load_token_cache

TRAINERS = ("ngram", "gpt", "external")

__all__ = [
    "TRAINERS",
    "ProxyError",
    "ProxyResult",
    "ProxyTrainer",
    "TokenizedCorpus",
    "TrainingData",
    "ValidationSet",
    "ValidationTokens",
    "build_token_cache",
    "load_token_cache",
    "losses_from_logprobs",
    "make_trainer",
]


def make_trainer(name: str, params: dict[str, Any] | None = None) -> ProxyTrainer:
    """Instantiate a trainer by name; unknown parameters raise TypeError naming them."""
    params = dict(params or {})
    if name == "ngram":
        from metamix.mixtures.proxies.ngram import NgramTrainer
        return NgramTrainer(**params)
    if name == "gpt":
        from metamix.mixtures.proxies.gpt import GPTTrainer
        return GPTTrainer(**params)
    if name == "external":
        from metamix.mixtures.proxies.external import ExternalTrainer
        return ExternalTrainer(**params)
    raise ValueError(f"unknown proxy trainer {name!r}; expected one of {list(TRAINERS)}")
