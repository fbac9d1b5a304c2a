"""Static PRRC encoder: MiniLM distilled into one vector per word piece (model2vec).

A document vector is the mean of its word-piece vectors, so encoding costs one tokenizer
pass and one sparse matrix product, no transformer: thousands of documents per second on
one core, where the MiniLM encoder it was distilled from manages ~25. The vectors are the
MiniLM's outputs for each piece alone, reduced by PCA and weighted down for frequent pieces
(model2vec's distillation; ``distill_static`` rebuilds the shipped folder). The head that
turns a vector into a score is a ``FeatureHead``, trained by ``train-rater``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from itertools import chain
from pathlib import Path

import numpy as np

from metamix.base.hashing import file_sha256
from metamix.scorers.prrc.raters_common import DEFAULT_MODEL_DIR

STATIC_ENCODER_NAME = "minilm-l6-static"
DEFAULT_STATIC_ENCODER = DEFAULT_MODEL_DIR / "static" / "encoder"
_ENCODERS: dict[tuple[str, int], StaticEncoder] = {}
_LOCK = threading.Lock()


class StaticEncoder:
    """A model2vec static model loaded from a local folder (never from a hub)."""

    def __init__(self, path: str | os.PathLike[str] = DEFAULT_STATIC_ENCODER) -> None:
        self.path = Path(path)
        weights = self.path / "model.safetensors"
        if not weights.is_file() or not (self.path / "tokenizer.json").is_file():
            raise FileNotFoundError(
                f"{self.path}: no static encoder (model.safetensors + tokenizer.json); rebuild "
                "it with `python -m metamix.scorers.prrc.distill_static`")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # model2vec falls back to the hub
        from model2vec import StaticModel

        model = StaticModel.from_pretrained(self.path)
        if model.token_mapping is not None or model.weights is not None:
            raise ValueError(f"{self.path}: vocabulary-quantized models are not supported")
        self.tokenizer = model.tokenizer
        # float16 on disk (half the size); sums in float32 lose nothing that matters.
        self.embedding = np.ascontiguousarray(model.embedding, dtype=np.float32)
        self.fingerprint = f"{STATIC_ENCODER_NAME}:{file_sha256(weights)[:16]}"

    @property
    def dim(self) -> int:
        return int(self.embedding.shape[1])

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(n_docs, dim) float32 unit vectors: the mean of each text's piece vectors; an
        empty text (no pieces) gets the zero vector."""
        import scipy.sparse as sp

        n = len(texts)
        if n == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        encodings = self.tokenizer.encode_batch_fast(list(texts), add_special_tokens=False)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=n)
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        ids = np.fromiter(chain.from_iterable(e.ids for e in encodings), dtype=np.int64,
                          count=int(indptr[-1]))
        counts = sp.csr_matrix((np.ones(len(ids), dtype=np.float32), ids, indptr),
                               shape=(n, len(self.embedding)))
        sums = np.asarray(counts @ self.embedding, dtype=np.float32)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        return np.divide(sums, norms, out=np.zeros_like(sums), where=norms > 0)


def load_static_encoder(path: str | os.PathLike[str] | None = None) -> StaticEncoder:
    """The encoder in ``path`` (default: the shipped one), loaded once per process and file
    version."""
    folder = Path(path) if path else DEFAULT_STATIC_ENCODER
    weights = folder / "model.safetensors"
    key = (str(folder.resolve()), weights.stat().st_mtime_ns if weights.exists() else 0)
    with _LOCK:
        if key not in _ENCODERS:
            _ENCODERS[key] = StaticEncoder(folder)
        return _ENCODERS[key]

