"""The ``prrc_transformers`` scorer: published PRRC raters stored as local HF model folders.

Meta-rater's released raters are ModernBERT-base sequence classifiers with 6 classes (scores
0..5), one per dimension. This scorer loads any such folder (``save_pretrained`` layout:
config, weights, tokenizer) from disk — never from a hub — and writes the expected score
over the classes, the same 0–5 scale as the ``prrc`` scorer, into ``prrc_hf_<name>``.
A one-output (regression) head is read as the score itself, clipped to [0, 5].
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from metamix.scorers.base import Direction, Scorer
from metamix.scorers.prrc.raters_common import excerpts
from metamix.scorers.registry import register

_MODELS: dict[tuple[str, str], tuple[Any, Any]] = {}
_LOCK = threading.Lock()


def load_classifier(model_dir: str, device: str) -> tuple[Any, Any]:
    """(tokenizer, model in eval mode on ``device``), loaded once per process."""
    key = (str(Path(model_dir).resolve()), device)
    with _LOCK:
        if key not in _MODELS:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from transformers import AutoModelForSequenceClassification, AutoTokenizer

            if not Path(model_dir).is_dir():
                raise FileNotFoundError(f"rater model folder {model_dir} not found")
            tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
            model = AutoModelForSequenceClassification.from_pretrained(
                model_dir, local_files_only=True)
            _MODELS[key] = (tokenizer, model.to(device).eval())
        return _MODELS[key]


def _no_empty_rows(enc: Any, tokenizer: Any) -> Any:
    """A text that tokenizes to nothing (empty, or only characters the normalizer drops,
    with a tokenizer that adds no [CLS]/[SEP]) becomes one unknown token: models cannot
    attend over zero positions."""
    import torch

    ids, mask = enc["input_ids"], enc["attention_mask"]
    empty = mask.sum(dim=1) == 0
    if not bool(empty.any()):
        return enc
    if ids.shape[1] == 0:
        enc = {k: torch.zeros((ids.shape[0], 1), dtype=v.dtype) for k, v in enc.items()}
        ids, mask = enc["input_ids"], enc["attention_mask"]
    filler = tokenizer.unk_token_id if tokenizer.unk_token_id is not None else 0
    ids[empty, 0] = filler
    mask[empty, 0] = 1
    return _Batch(enc.items())


class _Batch(dict):
    """A plain dict of tensors with the ``.to(device)`` of a tokenizer's BatchEncoding."""

    def to(self, device: str) -> _Batch:
        return _Batch({k: v.to(device) for k, v in self.items()})


def classifier_scores(tokenizer: Any, model: Any, texts: list[str], max_length: int,
                      batch_size: int, device: str) -> np.ndarray:
    """Expected class value per text. Texts are batched in length order, so a batch pads to
    similar lengths, then put back in input order."""
    import torch

    scores = np.zeros(len(texts), dtype=np.float64)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            enc = tokenizer([texts[i] for i in idx], truncation=True, max_length=max_length,
                            padding=True, return_tensors="pt")
            enc = _no_empty_rows(enc, tokenizer).to(device)
            logits = model(**enc).logits.float()
            if logits.shape[1] == 1:
                values = logits[:, 0]
            else:
                probs = torch.softmax(logits, dim=-1)
                values = probs @ torch.arange(logits.shape[1], dtype=probs.dtype,
                                              device=probs.device)
            scores[idx] = values.clamp(0.0, 5.0).cpu().numpy()
    return scores


@register
class PRRCTransformersScorer(Scorer):
    """``model_dirs`` maps an output name (e.g. ``reasoning``) to a local model folder; the
    column is ``prrc_hf_<name>`` (float32, 0–5). ``excerpt_chars`` (None = whole text)
    cuts the text like the seed excerpts before tokenizing; ``max_length`` truncates tokens.
    """

    name = "prrc_transformers"

    def __init__(
        self,
        model_dirs: dict[str, str],
        max_length: int = 512,
        batch_size: int = 16,
        excerpt_chars: int | None = None,
        device: str = "auto",
    ) -> None:
        if not model_dirs:
            raise ValueError("model_dirs must name at least one rater folder")
        bad = [k for k in model_dirs if not k.isidentifier()]
        if bad:
            raise ValueError(f"model_dirs keys become column names; invalid: {bad}")
        self.model_dirs = dict(model_dirs)
        self.max_length = int(max_length)
        self.batch_size = int(batch_size)
        self.excerpt_chars = excerpt_chars
        self.device = device

    def _device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def directions(self) -> dict[str, Direction]:
        return {f"prrc_hf_{k}": "higher" for k in self.model_dirs}

    def output_schema(self) -> pa.Schema:
        return pa.schema([pa.field(f"prrc_hf_{k}", pa.float32()) for k in self.model_dirs])

    def score(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        raw = batch.column(batch.schema.get_field_index("text")).to_pylist()
        missing = np.array([t is None for t in raw], dtype=bool)
        chars = self.excerpt_chars
        texts = excerpts(raw, chars) if chars else [t or "" for t in raw]
        device = self._device()
        out: dict[str, pa.Array] = {}
        for key, model_dir in self.model_dirs.items():
            tokenizer, model = load_classifier(model_dir, device)
            values = classifier_scores(tokenizer, model, texts, self.max_length,
                                       self.batch_size, device)
            out[f"prrc_hf_{key}"] = pa.array(values.astype(np.float32), pa.float32(),
                                             mask=missing)
        return out
