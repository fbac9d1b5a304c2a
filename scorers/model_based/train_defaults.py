"""Rebuild the shipped default models from the bundled corpus's train split.

    python -m metamix.scorers.model_based.train_defaults [--only fasttext,dsir,ngram]
        [--positives reference,books,technical] [--negatives web]
        [--dsir-target books,reference] [--ngram-target books,reference,technical]
        [--tokenizer PATH] [--out-dir scorers/model_based/models]

Every step is deterministic (hash-ordered documents, fixed seeds, fastText thread=1), so
re-running on the same corpus reproduces the committed files. The n-gram model needs the
run's BPE: by default the copy shipped next to the model, else ``out/demo/tokenizer.json``
(written by ``metamix score configs/demo.yaml``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from metamix.scorers.model_based import dsir, fasttext_quality, ngram_perplexity
from metamix.scorers.model_based._common import (
    MODELS_DIR,
    REPO_ROOT,
    SAMPLE_TRAIN,
    read_domain_texts,
)

ALL_DOMAINS = ("web", "code", "books", "reference", "technical", "qa")


def _domains(value: str) -> tuple[str, ...]:
    return tuple(d.strip() for d in value.split(",") if d.strip())


def train_dsir_default(out_dir: Path, train_dir: Path, target: tuple[str, ...]) -> Path:
    """Target = the given domains; raw = every document of the train split."""
    target_counts = dsir.fit_bucket_counts(read_domain_texts(train_dir, target))
    raw_counts = dsir.fit_bucket_counts(read_domain_texts(train_dir, ALL_DOMAINS))
    path = out_dir / dsir.DEFAULT_MODEL
    dsir.save_dsir_model(path, target_counts, raw_counts,
                         {"target_domains": list(target), "raw_domains": list(ALL_DOMAINS),
                          "n_buckets": dsir.DEFAULT_BUCKETS,
                          "features": "hashed lowercased wordpunct unigrams+bigrams"})
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", type=_domains, default=("fasttext", "dsir", "ngram"))
    parser.add_argument("--train-dir", type=Path, default=SAMPLE_TRAIN)
    parser.add_argument("--out-dir", type=Path, default=MODELS_DIR)
    parser.add_argument("--positives", type=_domains,
                        default=fasttext_quality.DEFAULT_POSITIVES)
    parser.add_argument("--negatives", type=_domains,
                        default=fasttext_quality.DEFAULT_NEGATIVES)
    parser.add_argument("--dsir-target", type=_domains, default=("books", "reference"))
    parser.add_argument("--ngram-target", type=_domains,
                        default=ngram_perplexity.DEFAULT_TARGET_DOMAINS)
    parser.add_argument("--tokenizer", type=Path, default=None)
    args = parser.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}
    if "fasttext" in args.only:
        path = fasttext_quality.train_default_classifier(
            args.out_dir / fasttext_quality.DEFAULT_MODEL, args.train_dir,
            args.positives, args.negatives)
        written["fasttext"] = str(path)
    if "dsir" in args.only:
        written["dsir"] = str(train_dsir_default(args.out_dir, args.train_dir,
                                                 args.dsir_target))
    if "ngram" in args.only:
        tokenizer = args.tokenizer
        if tokenizer is None:
            shipped = MODELS_DIR / ngram_perplexity.DEFAULT_TOKENIZER
            tokenizer = shipped if shipped.exists() else REPO_ROOT / "out/demo/tokenizer.json"
        ngram_perplexity.train_default_ngram_model(tokenizer, args.out_dir, args.train_dir,
                                                   args.ngram_target)
        written["ngram"] = str(args.out_dir / ngram_perplexity.DEFAULT_MODEL)
    print(json.dumps(written, indent=2))


if __name__ == "__main__":
    main()
