"""Per-document perplexity under a Kneser–Ney n-gram model of a target set (CCNet-style).

CCNet and Meta-rater score documents by their perplexity under a KenLM model trained on a
clean reference set (Wikipedia): low perplexity = reads like the target. Our model is a
pruned interpolated modified Kneser–Ney trigram over the run's byte-level BPE ids
(``kneser_ney.py`` says why it is not KenLM itself). The shipped default is trained on the
``books`` + ``reference`` + ``technical`` documents of the bundled train split, and ships
with a copy of the BPE it was trained with (``ngram_tokenizer.json``); the model file
records that tokenizer's sha256 and the scorer refuses a tokenizer with another hash.

Columns, natural logs, each token predicted from its two predecessors (document start =
``<|endoftext|>`` padding; no end-of-document token is predicted):

- ``ngram_logprob_<target>``: mean log-probability per token (higher = more target-like);
- ``ngram_ppl_<target>``: exp(-mean log-probability), finite and > 0.

A document with no tokens (empty text) gets NaN in both columns.

Tokenize once: in ``metamix score`` the documents arrive already encoded with the run's
tokenizer (``metamix.base.bpe.TOKEN_IDS_COLUMN``). When that tokenizer is the model's own
(same sha256, as for the demo corpus, whose run tokenizer is the shipped copy), the scorer
reuses those ids and encodes again only the documents longer than ``max_chars`` (their
first ``max_chars`` characters). A run whose tokenizer differs (another corpus trains
another BPE) cannot share ids with a model trained on other ids: the scorer encodes with
the model's tokenizer, through the same fast encoder; to share, retrain the model on the
run's tokenizer (``python -m metamix.scorers.model_based.train_defaults --only ngram
--tokenizer out/<run>/tokenizer.json``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from metamix.base.bpe import BpeEncoder, load_encoder, shared_token_ids
from metamix.base.hashing import file_sha256
from metamix.scorers.base import Direction, Scorer
from metamix.scorers.model_based._common import (
    MODELS_DIR,
    SAMPLE_TRAIN,
    LazyModel,
    read_domain_texts,
    resolve_model_path,
    text_column,
)
from metamix.scorers.model_based.kneser_ney import (
    BackoffNgramModel,
    encode,
    exact_keys,
    fit_kneser_ney,
    windows,
)
from metamix.scorers.registry import register

DEFAULT_MODEL = "ngram_books_reference_technical.npz"
DEFAULT_TOKENIZER = "ngram_tokenizer.json"
DEFAULT_TARGET_DOMAINS = ("books", "reference", "technical")
PAD_TOKEN = "<|endoftext|>"


def load_bpe(path: Path) -> BpeEncoder:
    return load_encoder(str(path))


def token_ids(tokenizer: BpeEncoder, texts: list[str]) -> list[np.ndarray]:
    return tokenizer.encode_lists(texts)


def train_ngram_model(texts: list[str], tokenizer_path: Path, out_path: Path, *,
                      order: int = 3, min_count: int = 3, logp_step: float | None = 1 / 512,
                      max_chars: int | None = None,
                      copy_tokenizer_to: Path | None = None) -> BackoffNgramModel:
    """Tokenize ``texts``, estimate and prune the model, save it with its tokenizer hash."""
    tokenizer = load_bpe(tokenizer_path)
    pad_id = tokenizer.token_to_id(PAD_TOKEN)
    if pad_id is None:
        raise ValueError(f"tokenizer has no {PAD_TOKEN} token")
    docs = token_ids(tokenizer, [t[:max_chars] for t in texts])
    win = windows(docs, order, pad_id)
    model = fit_kneser_ney(win, tokenizer.vocab_size, min_count=min_count,
                           logp_step=logp_step)
    model.meta = {"tokenizer_sha256": file_sha256(tokenizer_path), "pad_id": pad_id,
                  "min_count": min_count, "n_train_docs": len(texts),
                  "n_train_tokens": int(len(win))}
    model.save(out_path)
    if copy_tokenizer_to is not None and Path(copy_tokenizer_to) != Path(tokenizer_path):
        shutil.copyfile(tokenizer_path, copy_tokenizer_to)
    return model


def train_default_ngram_model(tokenizer_path: Path, out_dir: Path = MODELS_DIR,
                              train_dir: Path = SAMPLE_TRAIN,
                              domains: tuple[str, ...] = DEFAULT_TARGET_DOMAINS,
                              min_count: int = 3) -> BackoffNgramModel:
    texts = read_domain_texts(train_dir, domains)
    return train_ngram_model(texts, tokenizer_path, out_dir / DEFAULT_MODEL,
                             min_count=min_count, copy_tokenizer_to=out_dir / DEFAULT_TOKENIZER)


@register
class NgramPerplexityScorer(LazyModel, Scorer):
    """Columns ``ngram_logprob_<target_name>`` and ``ngram_ppl_<target_name>``."""

    name = "ngram_perplexity"

    def __init__(self, model_path: str | None = None, tokenizer_path: str | None = None,
                 target_name: str = "books_reference_technical",
                 max_chars: int | None = 20_000) -> None:
        self.model_path = model_path
        self.tokenizer_path = tokenizer_path
        self.target_name = target_name
        self.max_chars = max_chars

    def directions(self) -> dict[str, Direction]:
        # likely under the reference model = close to the reference text
        return {f"ngram_logprob_{self.target_name}": "higher",
                f"ngram_ppl_{self.target_name}": "lower"}

    def output_schema(self) -> pa.Schema:
        return pa.schema([(f"ngram_logprob_{self.target_name}", pa.float32()),
                          (f"ngram_ppl_{self.target_name}", pa.float32())])

    def _loaded(self) -> tuple[BackoffNgramModel, BpeEncoder, str]:
        if getattr(self, "_cached_loaded", None) is None:
            model = BackoffNgramModel.load(resolve_model_path(self.model_path, DEFAULT_MODEL))
            tok_path = (Path(self.tokenizer_path) if self.tokenizer_path
                        else resolve_model_path(self.model_path, DEFAULT_MODEL).parent
                        / DEFAULT_TOKENIZER)
            want = model.meta.get("tokenizer_sha256")
            have = file_sha256(tok_path)
            if want and have != want:
                raise ValueError(f"{tok_path} is not the tokenizer the n-gram model was "
                                 "trained with (sha256 differs)")
            self._cached_loaded = (model, load_bpe(tok_path), have)
        return self._cached_loaded

    def mean_logprobs(self, texts: list[str]) -> np.ndarray:
        model, tokenizer, _ = self._loaded()
        return _mean_logprobs(model, token_ids(tokenizer, texts))

    def score(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        mean_lp = _mean_logprobs(self._loaded()[0], self._token_docs(batch))
        ppl = np.exp(-mean_lp)
        return {f"ngram_logprob_{self.target_name}": pa.array(mean_lp.astype(np.float32)),
                f"ngram_ppl_{self.target_name}": pa.array(ppl.astype(np.float32))}

    def _token_docs(self, batch: pa.RecordBatch) -> list[np.ndarray]:
        """Each row's ids of its first ``max_chars`` characters: the batch's own ids where
        they come from this model's tokenizer, else a fresh encoding."""
        _, tokenizer, tokenizer_sha = self._loaded()
        shared = shared_token_ids(batch, tokenizer_sha)
        if shared is None:
            return token_ids(tokenizer, text_column(batch, self.max_chars).to_pylist())
        offsets = shared.offsets.to_numpy()
        flat = shared.flatten().to_numpy()
        docs = [flat[offsets[i] - offsets[0]:offsets[i + 1] - offsets[0]]
                for i in range(len(shared))]
        if self.max_chars is not None:
            text = text_column(batch)
            long_rows = np.flatnonzero(pc.utf8_length(text).to_numpy() > self.max_chars)
            if len(long_rows):
                cut = text_column(batch.take(pa.array(long_rows)), self.max_chars)
                for row, ids in zip(long_rows, token_ids(tokenizer, cut.to_pylist()),
                                    strict=True):
                    docs[row] = ids
        return docs


def _mean_logprobs(model: BackoffNgramModel, docs: list[np.ndarray]) -> np.ndarray:
    lengths = np.array([len(d) for d in docs], dtype=np.int64)
    lp = _window_logprobs(model, windows(docs, model.order, int(model.meta["pad_id"])))
    rows = np.repeat(np.arange(len(docs)), lengths)
    sums = np.bincount(rows, weights=lp, minlength=len(docs))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(lengths > 0, sums / np.maximum(lengths, 1), np.nan)


def _window_logprobs(model: BackoffNgramModel, win: np.ndarray) -> np.ndarray:
    """``model.logprob`` of every window, each distinct window looked up once and in key
    order: a batch repeats ~30% of its n-grams, and sorted queries walk the model's sorted
    key arrays front to back (about 2x faster than random binary searches). The values are
    the same lookups, so the result is identical."""
    if len(win) == 0 or not exact_keys(model.vocab_size, model.order):
        return model.logprob(win)  # hashed keys could collide: look every window up
    _, first, inverse = np.unique(encode(win, model.vocab_size), return_index=True,
                                  return_inverse=True)
    return model.logprob(win[first])[inverse.reshape(-1)]
