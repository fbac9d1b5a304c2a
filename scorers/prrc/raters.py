"""The ``prrc`` scorer: the four PRRC dimensions from the raters trained on the seed labels.

By default it reads ``scorers/prrc/models/manifest.json`` (written by ``train-rater``), which
names the default rater kind per dimension (the best on kinds of text held out of training)
and every rater's file, so scoring needs nothing but the repository and the installed
packages. Models are loaded lazily, once per process, into a
module-level cache — never onto the scorer object, which the runner pickles to spawned
workers (fastText models cannot be pickled, and copying weights per task would be waste).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from metamix.scorers.base import Direction, Scorer
from metamix.scorers.prrc.raters_common import (
    DEFAULT_MODEL_DIR,
    DIMENSIONS,
    excerpts,
    fasttext_text,
)
from metamix.scorers.registry import register

RaterKind = Literal["fasttext", "static", "embedding"]
HEAD_KINDS = ("static", "embedding")
_RATERS: dict[tuple[str, str, int, str], Any] = {}
_LOCK = threading.Lock()
_MANIFESTS: dict[tuple[str, int], dict[str, Any]] = {}


def read_manifest(model_dir: Path) -> dict[str, Any]:
    """The raters' manifest, parsed once per process per file version (retraining into the
    same folder changes its mtime, so a long-lived process never serves a stale one)."""
    path = Path(model_dir) / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: train raters first (metamix train-rater)")
    key = (str(path.resolve()), path.stat().st_mtime_ns)
    if key not in _MANIFESTS:
        _MANIFESTS[key] = json.loads(path.read_text())
    return _MANIFESTS[key]


def calibration_map(data: dict[str, Any]) -> Any:
    from metamix.scorers.prrc.raters_calibration import QuantileMap

    return QuantileMap.from_json(data)


def load_rater(kind: str, path: Path, expected_encoder: str | None = None) -> Any:
    """The fastText model or ``FeatureHead`` in ``path``, loaded at most once per process
    (per file version)."""
    key = (kind, str(path.resolve()), path.stat().st_mtime_ns, expected_encoder or "")
    with _LOCK:
        if key not in _RATERS:
            if kind == "fasttext":
                from metamix.scorers.prrc.raters_fasttext import FastTextRater

                _RATERS[key] = FastTextRater(path)
            elif kind in HEAD_KINDS:
                from metamix.scorers.prrc.raters_head import FeatureHead

                _RATERS[key] = FeatureHead.load(path, expected_encoder)
            else:
                raise ValueError(f"unknown PRRC rater kind {kind!r}")
        return _RATERS[key]


@register
class PRRCScorer(Scorer):
    """``prrc_<dimension>`` (float32, 0–5): the trained rater's score.

    Params: ``kinds`` overrides the manifest's default kind per dimension (``fasttext``,
    ``static`` or ``embedding``, the full MiniLM: use it with a GPU); ``model_dir`` points at
    other trained raters; ``excerpt_chars`` defaults to the length the labels saw (from the
    manifest); ``device``, ``batch_size`` and ``torch_threads`` apply to the MiniLM encoder
    only (``torch_threads`` caps its CPU threads per worker process; None = torch's default,
    which oversubscribes with many workers).
    """

    name = "prrc"

    def __init__(
        self,
        kinds: dict[str, RaterKind] | None = None,
        model_dir: str | None = None,
        excerpt_chars: int | None = None,
        dimensions: tuple[str, ...] = DIMENSIONS,
        device: str = "auto",
        batch_size: int = 32,
        torch_threads: int | None = None,
    ) -> None:
        self.kinds = dict(kinds or {})
        self.model_dir = model_dir
        self.excerpt_chars = excerpt_chars
        self.dimensions = tuple(dimensions)
        self.device = device
        self.batch_size = int(batch_size)
        self.torch_threads = torch_threads
        unknown = sorted((set(self.dimensions) | set(self.kinds)) - set(DIMENSIONS))
        if unknown:
            raise ValueError(f"unknown PRRC dimensions {unknown}; known: {list(DIMENSIONS)}")
        bad_kinds = sorted(set(self.kinds.values()) - {"fasttext", *HEAD_KINDS})
        if bad_kinds:
            raise ValueError(f"unknown PRRC rater kinds {bad_kinds}; known: fasttext, "
                             f"{', '.join(HEAD_KINDS)}")

    def _model_dir(self) -> Path:
        return Path(self.model_dir) if self.model_dir else DEFAULT_MODEL_DIR

    def resolved(self) -> dict[str, tuple[str, Path]]:
        """Dimension → (kind, model file), after applying ``kinds`` to the manifest."""
        model_dir = self._model_dir()
        manifest = read_manifest(model_dir)
        chosen = {}
        for dim in self.dimensions:
            kind = self.kinds.get(dim, manifest["defaults"][dim])
            relative = manifest["files"].get(kind, {}).get(dim)
            if relative is None:
                raise FileNotFoundError(f"{model_dir}: no {kind} rater for {dim}")
            chosen[dim] = (kind, model_dir / relative)
        return chosen

    def directions(self) -> dict[str, Direction]:
        return {f"prrc_{dim}": "higher" for dim in self.dimensions}

    def output_schema(self) -> pa.Schema:
        return pa.schema([pa.field(f"prrc_{dim}", pa.float32()) for dim in self.dimensions])

    def _static_encoder(self) -> Any:
        from metamix.scorers.prrc.raters_static import load_static_encoder

        manifest = read_manifest(self._model_dir())
        relative = manifest.get("encoders", {}).get("static")
        return load_static_encoder(self._model_dir() / relative if relative else None)

    def score(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        column = batch.column(batch.schema.get_field_index("text"))
        raw = column.to_pylist()
        missing = np.array([t is None for t in raw], dtype=bool)
        excerpt_chars = self.excerpt_chars or read_manifest(self._model_dir())["excerpt_chars"]
        texts = excerpts(raw, excerpt_chars)
        chosen = self.resolved()
        kinds = {kind for kind, _ in chosen.values()}
        # Every input is computed once per batch and shared by the raters that read it.
        lines = stats = None
        vectors: dict[str, np.ndarray] = {}
        encoders: dict[str, str] = {}
        if "fasttext" in kinds:
            lines = [fasttext_text(t) for t in texts]
        if kinds & set(HEAD_KINDS):
            from metamix.scorers.prrc.raters_text_stats import text_statistics

            stats = text_statistics(texts)
        if "static" in kinds:
            encoder = self._static_encoder()
            vectors["static"], encoders["static"] = encoder.encode(texts), encoder.fingerprint
        if "embedding" in kinds:
            from metamix.scorers.prrc.raters_embedding import embed, encoder_fingerprint

            if self.torch_threads:
                import torch

                torch.set_num_threads(self.torch_threads)
            vectors["embedding"] = embed(texts, self.batch_size, self.device)
            encoders["embedding"] = encoder_fingerprint()
        out: dict[str, pa.Array] = {}
        maps = read_manifest(self._model_dir()).get("calibration", {})
        for dim, (kind, path) in chosen.items():
            rater = load_rater(kind, path, encoders.get(kind))
            if not texts:
                values = np.zeros(0)
            elif kind == "fasttext":
                values = rater.score_lines(lines)
            else:
                values = rater.predict(vectors[kind], stats)
            if dim in maps.get(kind, {}):   # onto the labels' scale (raters_calibration)
                values = calibration_map(maps[kind][dim])(values)
            out[f"prrc_{dim}"] = pa.array(np.asarray(values, np.float32), pa.float32(),
                                          mask=missing)
        return out
