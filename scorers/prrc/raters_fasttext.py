"""fastText PRRC rater: one supervised 6-class model per dimension.

Chosen for throughput (thousands of documents per second per core, no torch) at the price of
bag-of-n-grams features. Training runs single-threaded with a fixed seed because fastText's
Hogwild SGD is only reproducible with one thread. A model over ``max_bytes`` is product-
quantized (``.ftz``), so a shipped rater stays a small file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from metamix.scorers._fasttext import import_fasttext, train_supervised
from metamix.scorers.prrc.raters_common import expected_value, fasttext_text

LABEL_PREFIX = "__label__"


class FastTextParams(BaseModel):
    """Hyper-parameters, small by default: a few hundred labelled excerpts cannot support
    a wide model, and a small ``bucket`` × ``dim`` keeps the file small."""

    model_config = ConfigDict(extra="forbid")

    dim: int = Field(default=16, gt=0, description="vector size")
    epoch: int = Field(default=40, gt=0, description="training epochs")
    lr: float = Field(default=0.3, gt=0, description="learning rate")
    word_ngrams: int = Field(default=2, ge=1, description="longest word n-gram")
    min_count: int = Field(default=1, ge=1, description="words seen fewer times are dropped")
    minn: int = Field(default=0, ge=0, description="shortest character n-gram (0: none)")
    maxn: int = Field(default=0, ge=0, description="longest character n-gram (0: none)")
    bucket: int = Field(default=20_000, ge=0, description="hash buckets for n-grams")
    seed: int = Field(default=0, description="training seed")
    max_bytes: int = Field(default=5_000_000, gt=0, description="quantize when larger")


def train_fasttext(
    texts: Sequence[str], labels: Sequence[int], out_path: Path, params: FastTextParams
) -> Path:
    """Train on (excerpt, 0..5 label) pairs and save; returns the written path (``.bin``, or
    ``.ftz`` when quantized). Identical inputs and params give identical predictions."""
    out_path.parent.mkdir(parents=True, exist_ok=True)

    def save(model: Any, train_file: Path) -> Path:
        bin_path = out_path.with_suffix(".bin")
        model.save_model(str(bin_path))
        if os.path.getsize(bin_path) <= params.max_bytes:
            out_path.with_suffix(".ftz").unlink(missing_ok=True)
            return bin_path
        model.quantize(input=str(train_file), retrain=False, qnorm=True, thread=1, verbose=0)
        ftz_path = out_path.with_suffix(".ftz")
        model.save_model(str(ftz_path))
        bin_path.unlink()
        return ftz_path

    lines = (f"{LABEL_PREFIX}{int(label)} {fasttext_text(text)}"
             for text, label in zip(texts, labels, strict=True))
    return train_supervised(
        lines, save, dim=params.dim, epoch=params.epoch, lr=params.lr,
        wordNgrams=params.word_ngrams, minCount=params.min_count, minn=params.minn,
        maxn=params.maxn, bucket=params.bucket, loss="softmax", seed=params.seed)


class FastTextRater:
    """A loaded model; ``score`` maps excerpts to expected 0–5 values."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.model = import_fasttext().load_model(str(self.path))

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """(n_docs, 6) class probabilities; classes never seen in training get 0."""
        return self.line_probabilities([fasttext_text(t) for t in texts])

    def line_probabilities(self, lines: Sequence[str]) -> np.ndarray:
        """As ``probabilities``, for texts already passed through ``fasttext_text`` — the
        normalization costs more than the model, so several raters share one pass."""
        probs = np.zeros((len(lines), 6), dtype=np.float64)
        if not lines:
            return probs
        labels, values = self.model.predict(list(lines), k=-1, threshold=0.0)
        for row, (names, p) in enumerate(zip(labels, values, strict=True)):
            for name, value in zip(names, p, strict=True):
                probs[row, int(name[len(LABEL_PREFIX) :])] = value
        return probs

    def score(self, texts: Sequence[str]) -> np.ndarray:
        return expected_value(self.probabilities(texts))

    def score_lines(self, lines: Sequence[str]) -> np.ndarray:
        return expected_value(self.line_probabilities(lines))
