"""`metamix train-rater`: train PRRC raters on the human seed labels and evaluate them.

For every dimension it trains a fastText rater and an embedding rater on the ``train``
split, scores the held-out ``test`` split with the *saved* models (so the numbers describe
exactly the files shipped), and makes the kind with the higher test Spearman the default.
Writes, under ``out_dir``::

    fasttext/<dimension>.ftz|.bin   embedding/<dimension>.json
    manifest.json     default kind per dimension, file of every rater, excerpt length
    evaluation.json   metrics per dimension and kind, label counts, parameters

    .venv/bin/python -m metamix.scorers.prrc.train_rater --out-dir scorers/prrc/models
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console
from rich.table import Table

from metamix.base.atomic import read_parquet_whole
from metamix.scorers.prrc.raters_common import DEFAULT_EXCERPT_CHARS, DIMENSIONS, KINDS, excerpts
from metamix.scorers.prrc.raters_embedding import EmbeddingParams, LinearHead, embed, train_head
from metamix.scorers.prrc.raters_fasttext import FastTextParams, FastTextRater, train_fasttext
from metamix.scorers.prrc.raters_metrics import evaluate

Kind = Literal["fasttext", "embedding"]
MANIFEST = "manifest.json"
EVALUATION = "evaluation.json"


class TrainRaterConfig(BaseModel):
    """The ``train_rater:`` config section (paths relative to the working directory)."""

    model_config = ConfigDict(extra="forbid")

    labels: str = "data/annotations/prrc_seed_v1.parquet"
    excerpts_dir: str = Field(default="data/annotations",
                              description="seed_batch_*.jsonl with the labelled excerpts")
    out_dir: str = "scorers/prrc/models"
    kinds: tuple[Kind, ...] = KINDS
    dimensions: tuple[str, ...] = DIMENSIONS
    excerpt_chars: int = Field(default=DEFAULT_EXCERPT_CHARS, gt=0)
    device: str = "auto"
    fasttext: FastTextParams = Field(default_factory=FastTextParams)
    embedding: EmbeddingParams = Field(default_factory=EmbeddingParams)


def load_labelled(cfg: TrainRaterConfig) -> list[dict[str, Any]]:
    """Label rows joined with their excerpt text, each checked against its sha256."""
    texts: dict[str, str] = {}
    for path in sorted(Path(cfg.excerpts_dir).glob("seed_batch_*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                texts[row["id"]] = row["excerpt"]
    rows = read_parquet_whole(cfg.labels).to_pylist()
    for row in rows:
        text = texts.get(row["id"])
        if text is None:
            raise ValueError(f"{cfg.labels}: no excerpt for {row['id']!r} in {cfg.excerpts_dir}")
        if hashlib.sha256(text.encode()).hexdigest() != row["excerpt_sha256"]:
            raise ValueError(f"excerpt of {row['id']!r} changed since it was labelled")
        row["excerpt"] = text
    return rows


def _predict(kind: str, path: Path, texts: list[str], test_vectors: np.ndarray | None):
    if kind == "fasttext":
        return FastTextRater(path).score(texts)
    return LinearHead.load(path).score(test_vectors)


def train_raters(cfg: TrainRaterConfig, console: Console | None = None) -> dict[str, Any]:
    """Train, save, evaluate; returns the evaluation report (also written to disk)."""
    console = console or Console(stderr=True)
    rows = load_labelled(cfg)
    train = [r for r in rows if r["split"] == "train"]
    test = [r for r in rows if r["split"] == "test"]
    if not train or not test:
        raise ValueError(f"need labelled train and test rows, got {len(train)} and {len(test)}")
    # Re-cut with the configured length: a no-op at the annotators' 2,000 characters.
    train_texts = excerpts([r["excerpt"] for r in train], cfg.excerpt_chars)
    test_texts = excerpts([r["excerpt"] for r in test], cfg.excerpt_chars)
    out = Path(cfg.out_dir)
    train_vectors = test_vectors = None
    if "embedding" in cfg.kinds:
        start = time.perf_counter()
        train_vectors = embed(train_texts, cfg.embedding.batch_size, cfg.device)
        test_vectors = embed(test_texts, cfg.embedding.batch_size, cfg.device)
        console.print(f"embedded {len(rows)} excerpts in {time.perf_counter() - start:.1f}s")

    files: dict[str, dict[str, str]] = {kind: {} for kind in cfg.kinds}
    metrics: dict[str, dict[str, dict[str, float]]] = {}
    for dim in cfg.dimensions:
        y_train = [r[dim] for r in train]
        y_test = [r[dim] for r in test]
        metrics[dim] = {}
        for kind in cfg.kinds:
            if kind == "fasttext":
                path = train_fasttext(train_texts, y_train, out / "fasttext" / dim, cfg.fasttext)
            else:
                head = train_head(train_vectors, y_train, cfg.embedding)
                path = head.save(out / "embedding" / f"{dim}.json")
            files[kind][dim] = path.relative_to(out).as_posix()
            predicted = _predict(kind, path, test_texts, test_vectors)
            metrics[dim][kind] = evaluate(predicted, y_test)
            metrics[dim][kind]["bytes"] = path.stat().st_size
            if kind == "embedding":
                metrics[dim][kind]["C"] = head.meta["C"]

    defaults = {dim: _better_kind(metrics[dim]) for dim in cfg.dimensions}
    manifest = {"excerpt_chars": cfg.excerpt_chars, "defaults": defaults, "files": files}
    report = {
        "n_train": len(train), "n_test": len(test), "defaults": defaults, "metrics": metrics,
        "label_counts": {dim: {split: _counts([r[dim] for r in part])
                               for split, part in (("train", train), ("test", test))}
                         for dim in cfg.dimensions},
        "config": cfg.model_dump(mode="json"),
    }
    _write_json(out / MANIFEST, manifest)
    _write_json(out / EVALUATION, report)
    console.print(evaluation_table(report))
    return report


def _better_kind(by_kind: dict[str, dict[str, float]]) -> str:
    """Highest test Spearman; NaN counts as worst; ties go to the cheaper fastText."""
    def key(kind: str) -> tuple[float, int]:
        rho = by_kind[kind]["spearman"]
        return (rho if math.isfinite(rho) else -2.0, kind == "fasttext")
    return max(by_kind, key=key)


def _counts(values: list[int]) -> list[int]:
    return [values.count(s) for s in range(6)]


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, allow_nan=True) + "\n")
    tmp.replace(path)


def evaluation_table(report: dict[str, Any]) -> Table:
    table = Table(title=f"PRRC raters on the test split (n={report['n_test']}, "
                        f"trained on {report['n_train']})")
    for col in ("dimension", "kind", "Spearman", "±1 acc", "macro-F1", "size", "default"):
        table.add_column(col, justify="left" if col in ("dimension", "kind") else "right")
    for dim, by_kind in report["metrics"].items():
        for kind, m in by_kind.items():
            table.add_row(dim, kind, f"{m['spearman']:.3f}", f"{m['within1_acc']:.3f}",
                          f"{m['macro_f1']:.3f}", f"{m['bytes'] / 1e6:.2f} MB",
                          "✓" if report["defaults"][dim] == kind else "")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", default=TrainRaterConfig().labels)
    parser.add_argument("--excerpts-dir", default=TrainRaterConfig().excerpts_dir)
    parser.add_argument("--out-dir", default=TrainRaterConfig().out_dir)
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    args = parser.parse_args(argv)
    cfg = TrainRaterConfig(labels=args.labels, excerpts_dir=args.excerpts_dir,
                           out_dir=args.out_dir, kinds=tuple(args.kinds))
    train_raters(cfg, Console(stderr=True, width=120))
    return 0


if __name__ == "__main__":
    sys.exit(main())
