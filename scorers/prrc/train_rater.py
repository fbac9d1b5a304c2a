"""`metamix train-rater`: train the PRRC raters on the seed labels and measure how they transfer.

Three rater kinds per dimension: ``fasttext`` (bag of n-grams, the baseline), ``static``
(MiniLM distilled into static word-piece vectors + text statistics → ``FeatureHead``) and
``embedding`` (full MiniLM vectors + the same statistics and head; a GPU user's option).
Each is evaluated two ways:

- **held-out kinds**: grouped cross-validation over all labelled rows where each fold holds
  out whole kinds of text (``cv``), pooled Spearman, per-kind means and kind-order
  inversions (``raters_transfer``);
- **held-out sources**: source-grouped K-fold (``cv.source_folds``), so a kind's other
  sources stay in training (``transfer_sources``);
- **in-domain test split**: trained on the ``train`` rows, saved, and the *saved* file
  scored on the ``test`` rows, so these numbers describe exactly the shipped model.

The default kind per dimension is the one among ``default_candidates`` with the highest
mean of the held-out-kind and held-out-source Spearman. Each rater's output is calibrated by
a quantile map fitted on its held-out-kind predictions (``raters_calibration``), stored in
the manifest and applied by the scorer, so scores spread over the labels' scale. Writes,
under ``out_dir``::

    fasttext/<dim>.ftz   static/<dim>.json   embedding/<dim>.json
    manifest.json     default kind per dimension, every rater's file and calibration, the
                      static encoder
    evaluation.json   the evaluations and the spread of predictions per dimension and kind,
                      label counts, the config

    .venv/bin/python -m metamix.scorers.prrc.train_rater
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console

from metamix.base.atomic import write_json_atomic
from metamix.base.errors import UserError
from metamix.base.progress import counted_progress
from metamix.scorers.prrc.raters_calibration import QuantileMap, spread_report
from metamix.scorers.prrc.raters_common import DEFAULT_EXCERPT_CHARS, DIMENSIONS, KINDS, excerpts
from metamix.scorers.prrc.raters_fasttext import FastTextParams, FastTextRater, train_fasttext
from metamix.scorers.prrc.raters_head import FeatureHead, HeadParams, fit_head
from metamix.scorers.prrc.raters_metrics import evaluate
from metamix.scorers.prrc.raters_transfer import TransferCV, kind_folds, transfer_metrics
from metamix.scorers.prrc.train_rater_data import (
    EXCERPT_GLOBS,
    LabelledSet,
    default_labels,
    load_labelled,
)
from metamix.scorers.prrc.train_rater_report import print_report

Kind = Literal["fasttext", "static", "embedding"]
ALL_KINDS: tuple[Kind, ...] = KINDS  # type: ignore[assignment]
MANIFEST = "manifest.json"
EVALUATION = "evaluation.json"
TRANSFER_GOAL = 0.6


class TrainRaterConfig(BaseModel):
    """The ``train_rater:`` config section (paths relative to the working directory)."""

    model_config = ConfigDict(extra="forbid")

    labels: str | None = Field(default=None, description="default: prrc_seed_v2.parquet when "
                               "it exists, else prrc_seed_v1.parquet")
    excerpts: tuple[str, ...] = Field(default=EXCERPT_GLOBS,
                                      description="JSONL files holding the labelled excerpts")
    out_dir: str = Field(
        default="scorers/prrc/models", description="where trained raters and evaluation.json go")
    kinds: tuple[Kind, ...] = Field(
        default=ALL_KINDS, description="rater kinds to train and evaluate")
    default_candidates: tuple[Kind, ...] = Field(
        default=("fasttext", "static"),
        description="kinds the shipped default may be (embedding needs a GPU to keep pace)")
    dimensions: tuple[str, ...] = Field(default=DIMENSIONS, description="PRRC dimensions to train")
    excerpt_chars: int = Field(default=DEFAULT_EXCERPT_CHARS, gt=0,
                               description="characters of each excerpt the raters read")
    static_encoder: str | None = Field(default=None, description="default: the shipped one")
    cache_dir: str = Field(default="out/_cache/prrc", description="MiniLM vectors by text hash")
    device: str = Field(
        default="auto", description="auto, cpu or cuda: where MiniLM vectors are computed")
    embedding_batch_size: int = Field(default=32, gt=0, description="texts per MiniLM batch")
    workers: int | None = Field(default=None, ge=1,
                                description="processes for the cross-validation folds; "
                                "None = one per core")
    cv: TransferCV = Field(default_factory=TransferCV)
    fasttext: FastTextParams = Field(default_factory=FastTextParams)
    head: HeadParams = Field(default_factory=HeadParams)


class RaterTrainer(Protocol):
    """One rater kind, over features computed once for every labelled row."""

    kind: str

    def fit_predict(self, train: np.ndarray, held: np.ndarray, y: np.ndarray) -> np.ndarray: ...

    def fit_save(self, train: np.ndarray, y: np.ndarray, stem: Path) -> Path: ...

    def predict_saved(self, path: Path, rows: np.ndarray) -> np.ndarray: ...


class FastTextTrainer:
    kind = "fasttext"

    def __init__(self, texts: list[str], params: FastTextParams) -> None:
        self.texts = texts
        self.params = params

    def _texts(self, rows: np.ndarray) -> list[str]:
        return [self.texts[i] for i in rows]

    def fit_predict(self, train: np.ndarray, held: np.ndarray, y: np.ndarray) -> np.ndarray:
        with tempfile.TemporaryDirectory() as tmp:
            path = self.fit_save(train, y, Path(tmp) / "model")
            return self.predict_saved(path, held)

    def fit_save(self, train: np.ndarray, y: np.ndarray, stem: Path) -> Path:
        return train_fasttext(self._texts(train), y[train].tolist(), stem, self.params)

    def predict_saved(self, path: Path, rows: np.ndarray) -> np.ndarray:
        return FastTextRater(path).score(self._texts(rows))


class HeadTrainer:
    """``FeatureHead`` over (vectors, statistics); inner tuning grouped like the outer CV."""

    def __init__(self, kind: str, vectors: np.ndarray, stats: np.ndarray, groups: np.ndarray,
                 params: HeadParams, encoder: str) -> None:
        self.kind, self.vectors, self.stats = kind, vectors, stats
        self.groups, self.params, self.encoder = groups, params, encoder

    def _fit(self, train: np.ndarray, y: np.ndarray) -> FeatureHead:
        return fit_head(self.vectors[train], self.stats[train], y[train], self.groups[train],
                        self.params, self.encoder)

    def fit_predict(self, train: np.ndarray, held: np.ndarray, y: np.ndarray) -> np.ndarray:
        return self._fit(train, y).predict(self.vectors[held], self.stats[held])

    def fit_save(self, train: np.ndarray, y: np.ndarray, stem: Path) -> Path:
        return self._fit(train, y).save(stem.with_suffix(".json"))

    def predict_saved(self, path: Path, rows: np.ndarray) -> np.ndarray:
        head = FeatureHead.load(path, expected_encoder=self.encoder)
        return head.predict(self.vectors[rows], self.stats[rows])


def build_trainers(cfg: TrainRaterConfig, data: LabelledSet, console: Console
                   ) -> tuple[dict[str, RaterTrainer], dict[str, str]]:
    """A trainer per configured kind, with every excerpt's features computed once; and the
    encoders the heads were trained on (for the manifest)."""
    from metamix.scorers.prrc.raters_text_stats import text_statistics

    texts = excerpts(data.texts, cfg.excerpt_chars)  # a no-op at the annotators' length
    groups = data.groups(cfg.cv.group_by)
    trainers: dict[str, RaterTrainer] = {}
    encoders: dict[str, str] = {}
    stats = text_statistics(texts) if {"static", "embedding"} & set(cfg.kinds) else None
    if "fasttext" in cfg.kinds:
        trainers["fasttext"] = FastTextTrainer(texts, cfg.fasttext)
    if "static" in cfg.kinds:
        from metamix.scorers.prrc.raters_static import load_static_encoder

        encoder = load_static_encoder(cfg.static_encoder)
        trainers["static"] = HeadTrainer("static", encoder.encode(texts), stats, groups,
                                         cfg.head, encoder.fingerprint)
        encoders["static"] = str(encoder.path.resolve())
        encoders["static_fingerprint"] = encoder.fingerprint
    if "embedding" in cfg.kinds:
        from metamix.scorers.prrc.raters_embedding import embed_cached, encoder_fingerprint

        start = time.perf_counter()
        with counted_progress(console, True) as bar:
            tasks: list[Any] = []

            def on_progress(done: int, total: int) -> None:
                if not tasks:
                    tasks.append(bar.add_task("MiniLM vectors (not cached)", total=total))
                bar.update(tasks[0], completed=done)

            vectors = embed_cached(texts, cfg.cache_dir, cfg.embedding_batch_size, cfg.device,
                                   on_progress=on_progress)
        console.print(f"MiniLM vectors for {len(texts)} excerpts in "
                      f"{time.perf_counter() - start:.1f}s (cache: {cfg.cache_dir})")
        trainers["embedding"] = HeadTrainer("embedding", vectors, stats, groups, cfg.head,
                                            encoder_fingerprint())
        encoders["embedding"] = encoder_fingerprint()
    return trainers, encoders


def held_out_kind_predictions(trainer: RaterTrainer, y: np.ndarray,
                              folds: list[tuple[np.ndarray, np.ndarray]],
                              on_fold: Callable[[], None] | None = None,
                              workers: int | None = 1) -> np.ndarray:
    """Out-of-fold predictions: each row predicted by a rater trained without its kind.

    Folds are independent (each seeded alike), so ``workers`` processes give the same
    numbers as one; ``on_fold`` is called as each fold finishes, in fold order."""
    predicted = np.zeros(len(y))
    workers = min(workers or os.cpu_count() or 1, len(folds))
    if workers <= 1:
        results: Any = (trainer.fit_predict(fit_rows, held, y) for fit_rows, held in folds)
    else:
        from joblib import Parallel, delayed, parallel_config

        with parallel_config(backend="loky", inner_max_num_threads=1):
            results = Parallel(n_jobs=workers, return_as="generator")(
                delayed(trainer.fit_predict)(fit_rows, held, y) for fit_rows, held in folds)
    for (_, held), values in zip(folds, results, strict=True):
        predicted[held] = values
        if on_fold:
            on_fold()
    return predicted


def train_raters(cfg: TrainRaterConfig, console: Console | None = None) -> dict[str, Any]:
    """Evaluate on held-out kinds and the test split, save, choose defaults; returns the
    evaluation report (also written to ``out_dir``)."""
    console = console or Console(stderr=True)
    started = time.perf_counter()
    data = load_labelled(cfg.labels or default_labels(), cfg.excerpts, cfg.dimensions)
    train, test = data.rows("train"), data.rows("test")
    if not len(train) or not len(test):
        raise UserError(f"{data.path}: need labelled train and test rows, got {len(train)} "
                        f"and {len(test)}")
    groups = data.groups(cfg.cv.group_by)
    folds = kind_folds(groups, cfg.cv.scheme, cfg.cv.folds)
    source_folds = (kind_folds(data.sources, "group_k_fold", cfg.cv.source_folds)
                    if cfg.cv.source_folds and len(set(data.sources.tolist())) >= 2 else [])
    trainers, encoders = build_trainers(cfg, data, console)
    out = Path(cfg.out_dir)
    files: dict[str, dict[str, str]] = {kind: {} for kind in trainers}
    calibration: dict[str, dict[str, Any]] = {kind: {} for kind in trainers}
    metrics: dict[str, dict[str, dict[str, Any]]] = {dim: {} for dim in cfg.dimensions}
    with counted_progress(console, True, "{task.fields[what]}") as bar:
        task = bar.add_task("train-rater", what="", total=len(cfg.dimensions) * len(trainers)
                            * (len(folds) + len(source_folds) + 1))
        for dim in cfg.dimensions:
            y = data.labels[dim].astype(np.float64)
            for kind, trainer in trainers.items():
                bar.update(task, what=f"{dim} {kind}: held-out kinds")
                oof = held_out_kind_predictions(trainer, y, folds, lambda: bar.advance(task),
                                                cfg.workers)
                calibrate = QuantileMap.fit(oof, data.labels[dim])
                calibration[kind][dim] = calibrate.to_json()
                entry: dict[str, Any] = {"transfer": transfer_metrics(
                    oof, data.labels[dim], groups, cfg.cv.inversion_margin)}
                scores = [entry["transfer"]["spearman"]]
                if source_folds:
                    bar.update(task, what=f"{dim} {kind}: held-out sources")
                    by_source = held_out_kind_predictions(
                        trainer, y, source_folds, lambda: bar.advance(task), cfg.workers)
                    entry["transfer_sources"] = transfer_metrics(
                        by_source, data.labels[dim], groups, cfg.cv.inversion_margin)
                    scores.append(entry["transfer_sources"]["spearman"])
                entry["transfer_score"] = float(np.mean(scores))
                entry["spread"] = {
                    "raw": spread_report(oof, data.labels[dim], data.kinds),
                    "calibrated": spread_report(calibrate(oof), data.labels[dim], data.kinds)}
                bar.update(task, what=f"{dim} {kind}: shipped model")
                path = trainer.fit_save(train, y, out / kind / dim)
                files[kind][dim] = path.relative_to(out).as_posix()
                tested = evaluate(calibrate(trainer.predict_saved(path, test)),
                                  data.labels[dim][test])
                metrics[dim][kind] = {**entry, "test": tested, "bytes": path.stat().st_size,
                                      **_head_choice(kind, path)}
                bar.advance(task)

    candidates = [k for k in cfg.default_candidates if k in trainers] or list(trainers)
    defaults = {dim: best_kind(metrics[dim], candidates) for dim in cfg.dimensions}
    manifest = {"excerpt_chars": cfg.excerpt_chars, "defaults": defaults, "files": files,
                "calibration": calibration, "encoders": _relative_encoders(encoders, out)}
    report = {
        "labels": data.path, "n": len(data), "n_train": len(train), "n_test": len(test),
        "group_by": cfg.cv.group_by, "scheme": cfg.cv.scheme, "n_folds": len(folds),
        "n_source_folds": len(source_folds),
        "groups": {g: int((groups == g).sum()) for g in sorted(set(groups.tolist()))},
        "transfer_goal": TRANSFER_GOAL, "defaults": defaults, "metrics": metrics,
        "label_counts": {dim: {split: np.bincount(data.labels[dim][rows], minlength=6).tolist()
                               for split, rows in (("train", train), ("test", test))}
                         for dim in cfg.dimensions},
        "seconds": round(time.perf_counter() - started, 1),
        "config": cfg.model_dump(mode="json"),
    }
    write_json_atomic(out / MANIFEST, manifest)
    write_json_atomic(out / EVALUATION, _finite(report))
    print_report(report, console)
    return report


def _head_choice(kind: str, path: Path) -> dict[str, Any]:
    if kind == "fasttext":
        return {}
    head = FeatureHead.load(path)
    return {"head": {"blend": head.blend, **{k: head.meta[k] for k in
                                              ("alpha", "n_trees", "inner_spearman")}}}


def _relative_encoders(encoders: dict[str, str], out: Path) -> dict[str, str]:
    """The static encoder's folder relative to the model folder when it lies inside it, so
    the shipped manifest works from any checkout."""
    if "static" in encoders:
        folder = Path(encoders["static"])
        with contextlib.suppress(ValueError):
            encoders = {**encoders, "static": folder.relative_to(out.resolve()).as_posix()}
    return encoders


def best_kind(by_kind: dict[str, dict[str, Any]], candidates: list[str]) -> str:
    """Highest mean Spearman over held-out kinds and held-out sources; NaN counts as
    worst; ties go to the earlier (cheaper) candidate."""
    def key(kind: str) -> tuple[float, int]:
        m = by_kind[kind]
        rho = m.get("transfer_score", m["transfer"]["spearman"])
        return (rho if math.isfinite(rho) else -2.0, -candidates.index(kind))
    return max(candidates, key=key)


def _finite(value: Any) -> Any:
    """NaN → null, so evaluation.json is standard JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", default=None)
    parser.add_argument("--out-dir", default=TrainRaterConfig().out_dir)
    parser.add_argument("--kinds", nargs="+", default=list(ALL_KINDS), choices=ALL_KINDS)
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    cfg = TrainRaterConfig(labels=args.labels, out_dir=args.out_dir, kinds=tuple(args.kinds))
    train_raters(cfg, Console(stderr=True, width=140))
    return 0


if __name__ == "__main__":
    sys.exit(main())
