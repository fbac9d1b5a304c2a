"""DCLM-style fastText quality classifier: P(high quality) from a bag of words and bigrams.

DCLM (Li et al. 2024) keeps documents that a fastText classifier, trained on curated
positives (OH-2.5 + ELI5) against random web negatives, scores as likely "high quality".
We have no such positives here, so the classes come from domains: by default positives are
``reference``, ``books`` and ``technical`` documents of the bundled train split and
negatives are ``web``. Classes are balanced by taking the same number of documents from
each (the ones whose id hashes lowest), as DCLM trains on balanced sets.

Training uses ``thread=1`` and a fixed seed, which makes fastText deterministic: the same
corpus and settings give a byte-identical model. The shipped default is quantized (.ftz)
to stay well under 5 MB. Text is fed as one line with runs of whitespace collapsed (fastText
reads line by line), like DCLM's preprocessing.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from metamix.scorers._fasttext import import_fasttext, train_supervised
from metamix.scorers.base import Scorer
from metamix.scorers.model_based._common import (
    SAMPLE_TRAIN,
    LazyModel,
    read_domain_texts,
    resolve_model_path,
    text_column,
)
from metamix.scorers.registry import register

DEFAULT_MODEL = "dclm_fasttext_hq.ftz"
POSITIVE_LABEL, NEGATIVE_LABEL = "__label__hq", "__label__lq"
DEFAULT_POSITIVES = ("reference", "books", "technical")
DEFAULT_NEGATIVES = ("web",)
_WHITESPACE = re.compile(r"\s+")


def one_line(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def train_quality_classifier(
    positives: list[str],
    negatives: list[str],
    out_path: Path,
    *,
    dim: int = 16,
    epoch: int = 5,
    lr: float = 0.1,
    word_ngrams: int = 2,
    min_count: int = 2,
    bucket: int = 200_000,
    seed: int = 0,
    quantize: bool = True,
    max_chars: int | None = 20_000,
) -> Path:
    """Train a two-class fastText model on ``positives`` vs ``negatives`` and save it.

    Lines are written positives first then negatives and shuffled with ``seed`` so the
    result depends only on the inputs. ``max_chars`` cuts very long documents, which keeps
    a single book from dominating the word counts.
    """
    rng = np.random.default_rng(seed)
    lines = [f"{POSITIVE_LABEL} {one_line(t[:max_chars])}" for t in positives]
    lines += [f"{NEGATIVE_LABEL} {one_line(t[:max_chars])}" for t in negatives]
    lines = [lines[i] for i in rng.permutation(len(lines))]
    out_path.parent.mkdir(parents=True, exist_ok=True)

    def save(model: Any, train_file: Path) -> Path:
        if quantize:
            model.quantize(
                input=str(train_file), qnorm=True, retrain=False, cutoff=0, thread=1, verbose=0
            )
        model.save_model(str(out_path))
        return out_path

    return train_supervised(lines, save, dim=dim, epoch=epoch, lr=lr, wordNgrams=word_ngrams,
                            minCount=min_count, bucket=bucket, seed=seed, loss="softmax")


def train_default_classifier(
    out_path: Path,
    train_dir: Path = SAMPLE_TRAIN,
    positive_domains: tuple[str, ...] = DEFAULT_POSITIVES,
    negative_domains: tuple[str, ...] = DEFAULT_NEGATIVES,
    max_docs_per_class: int = 6000,
    seed: int = 0,
) -> Path:
    """The shipped default: balanced domain classes from the bundled train split."""
    pos = read_domain_texts(train_dir, positive_domains)
    neg = read_domain_texts(train_dir, negative_domains)
    n = min(len(pos), len(neg), max_docs_per_class)
    if n == 0:
        raise ValueError("no training documents for one of the classes")
    return train_quality_classifier(pos[:n], neg[:n], out_path, seed=seed)


@register
class FastTextQualityScorer(LazyModel, Scorer):
    """Column ``dclm_fasttext_hq_prob``: the classifier's P(high quality), in [0, 1]."""

    name = "dclm_fasttext"
    column_directions = {"dclm_fasttext_hq_prob": "higher"}
    column = "dclm_fasttext_hq_prob"

    def __init__(self, model_path: str | None = None, max_chars: int | None = 20_000) -> None:
        self.model_path = model_path
        self.max_chars = max_chars

    def output_schema(self) -> pa.Schema:
        return pa.schema([(self.column, pa.float32())])

    def _model(self):  # noqa: ANN202 - fasttext has no type stubs
        if getattr(self, "_cached_model", None) is None:
            path = resolve_model_path(self.model_path, DEFAULT_MODEL)
            self._cached_model = import_fasttext().load_model(str(path))
        return self._cached_model

    def hq_probabilities(self, texts: pa.Array) -> np.ndarray:
        # Collapse whitespace in Arrow (fastText must not see newlines), then one C++ call.
        flat = pc.utf8_trim_whitespace(pc.replace_substring_regex(texts, r"\s+", " "))
        labels, probs = self._model().predict(flat.to_pylist(), k=-1, threshold=0.0)
        out = np.empty(len(texts))
        for i, (row_labels, row_probs) in enumerate(zip(labels, probs, strict=True)):
            hit = [p for lab, p in zip(row_labels, row_probs, strict=True) if lab == POSITIVE_LABEL]
            out[i] = hit[0] if hit else 0.0
        return np.clip(out, 0.0, 1.0)

    def score(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        values = self.hq_probabilities(text_column(batch, self.max_chars))
        return {self.column: pa.array(values.astype(np.float32), type=pa.float32())}
