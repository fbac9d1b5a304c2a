"""The proxy-trainer interface: train a small model on a data manifest, report validation loss.

Every trainer sees the same two descriptions: ``TrainingData`` (which documents of a token
cache, a token budget, a seed) and ``ValidationSet`` (a token cache of held-out documents).
Both are small picklable values, so a sweep can ship them to worker processes (or, later,
other machines) and get ``ProxyResult`` data back.

Loss convention: natural-log loss (nats/token) over every token of every validation
document, each document predicted from an ``<|endoftext|>`` start context. ``losses`` holds
one value per validation domain; ``mean_loss`` is the *token-weighted* mean over all
validation tokens (total nats / total tokens), not the mean of the domain losses.

An evaluation cache (``evalsets.build_eval_cache``) may weight tokens: context tokens of a
cloze item weigh 0 and its answer tokens 1/len(answer), so the "domain" loss of such items
is the mean over items of the answer's per-token negative log-likelihood.

Validation order is fixed and trainer-independent: documents sorted by (domain, id), tokens
in document order. ``token_logprobs[i]`` of any two trainers therefore refers to the same
validation token, which lets a mixture-of-experts step combine proxies token by token.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from metamix.mixtures.proxies.tokens import TokenizedCorpus, load_token_cache


class ProxyError(RuntimeError):
    """A proxy run failed in a way worth recording (bad trainer output, timeout, ...)."""


@dataclass(frozen=True)
class TrainingData:
    """What a proxy trains on.

    ``doc_indices`` are rows of the token cache (None = all). The ``seed`` shuffles them and
    documents are taken in that order until ``token_budget`` tokens (the last one cut short);
    so with a budget below the selection size the seed changes *which* documents are used,
    and without one it changes only their order (which an n-gram model ignores).
    """

    corpus: str
    doc_indices: np.ndarray | None = None
    token_budget: int | None = None
    seed: int = 0

    def load(self) -> TokenizedCorpus:
        return load_token_cache(str(self.corpus))

    def ordered_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """(cache rows in training order, tokens used from each) after the budget cut."""
        corpus = self.load()
        rows = (np.arange(corpus.n_docs) if self.doc_indices is None
                else np.asarray(self.doc_indices, dtype=np.int64))
        rows = np.random.default_rng(self.seed).permutation(rows)
        used = corpus.doc_lengths()[rows].astype(np.int64)
        if self.token_budget is not None:
            start = np.concatenate([[0], np.cumsum(used)[:-1]])
            used = np.clip(self.token_budget - start, 0, used)
            keep = used > 0
            rows, used = rows[keep], used[keep]
        return rows, used

    def documents(self) -> list[np.ndarray]:
        """Token ids of each training document (int64), in training order, budget applied."""
        corpus = self.load()
        rows, used = self.ordered_rows()
        starts = corpus.offsets[rows]
        return [np.asarray(corpus.tokens[s : s + n], dtype=np.int64)
                for s, n in zip(starts, used, strict=True)]


@dataclass(frozen=True)
class ValidationTokens:
    """Validation documents in the canonical (domain, id) order."""

    tokens: np.ndarray          # int64, all documents concatenated
    offsets: np.ndarray         # int64, n_docs + 1
    doc_domains: np.ndarray     # object, per document
    token_domains: np.ndarray   # int32 index into ``domain_names``, per token
    domain_names: tuple[str, ...]
    vocab_size: int
    eos_id: int
    token_weights: np.ndarray | None = None   # float64 per token; None = all 1

    @property
    def n_tokens(self) -> int:
        return int(self.offsets[-1])

    def docs(self) -> list[np.ndarray]:
        return [self.tokens[self.offsets[i] : self.offsets[i + 1]]
                for i in range(len(self.offsets) - 1)]


@dataclass(frozen=True)
class ValidationSet:
    """A token cache of held-out documents (``build_token_cache`` on the validation files)."""

    corpus: str

    def load(self) -> ValidationTokens:
        return _load_validation(str(self.corpus))


@lru_cache(maxsize=2)
def _load_validation(path: str) -> ValidationTokens:
    corpus = load_token_cache(path)
    lengths = corpus.doc_lengths()
    order = sorted((d, i, n) for n, (d, i) in enumerate(zip(corpus.domains, corpus.ids,
                                                            strict=True)) if lengths[n] > 0)
    rows = np.asarray([n for _, _, n in order], dtype=np.int64)
    if len(rows) == 0:
        raise ProxyError(f"validation set {path} has no tokens")
    tokens = np.concatenate([np.asarray(corpus.doc(r), dtype=np.int64) for r in rows])
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths[rows], out=offsets[1:])
    doc_domains = corpus.domains[rows]
    names = tuple(sorted(set(doc_domains)))
    domain_index = np.asarray([names.index(d) for d in doc_domains], dtype=np.int32)
    weights = None
    weights_path = Path(path) / "weights.npy"
    if weights_path.is_file():
        all_weights = np.load(weights_path)
        weights = np.concatenate([all_weights[corpus.offsets[r]:corpus.offsets[r + 1]]
                                  for r in rows]).astype(np.float64)
    return ValidationTokens(tokens=tokens, offsets=offsets, doc_domains=doc_domains,
                            token_domains=np.repeat(domain_index, lengths[rows]),
                            domain_names=names, vocab_size=corpus.vocab_size,
                            eos_id=corpus.eos_id, token_weights=weights)


@dataclass
class ProxyResult:
    """Validation loss of one proxy run (nats/token; see the module docstring)."""

    losses: dict[str, float]
    mean_loss: float
    n_train_tokens: int
    seconds: float
    token_logprobs: np.ndarray | None = None
    curve: list[tuple[int, float]] | None = None
    info: dict[str, Any] = field(default_factory=dict)


def losses_from_logprobs(val: ValidationTokens, logprobs: np.ndarray
                         ) -> tuple[dict[str, float], float]:
    """Per-domain and token-weighted mean loss from per-token natural-log probabilities
    (tokens weighted by ``val.token_weights`` where the set has them)."""
    if logprobs.shape != (val.n_tokens,):
        raise ProxyError(f"expected {val.n_tokens} token log-probs, got {logprobs.shape}")
    nll = -logprobs.astype(np.float64)
    weights = np.ones_like(nll) if val.token_weights is None else val.token_weights
    sums = np.bincount(val.token_domains, weights=nll * weights,
                       minlength=len(val.domain_names))
    counts = np.bincount(val.token_domains, weights=weights, minlength=len(val.domain_names))
    losses = {d: float(sums[i] / counts[i]) for i, d in enumerate(val.domain_names)}
    mean = float(sums.sum() / counts.sum())
    if not all(math.isfinite(v) for v in [*losses.values(), mean]):
        raise ProxyError("non-finite validation loss")
    return losses, mean


class ProxyTrainer(ABC):
    """Sklearn-like: the constructor only stores parameters; ``fit_evaluate`` does the work."""

    name: ClassVar[str]

    @abstractmethod
    def fit_evaluate(self, train: TrainingData, validation: ValidationSet, *,
                     return_logprobs: bool = False, work_dir: Path | None = None) -> ProxyResult:
        """Train on ``train`` and return the loss on ``validation``."""

    def get_params(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}
