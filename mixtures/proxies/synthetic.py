"""Small synthetic scored corpora with a known notion of quality, for tests and smoke runs.

Each domain speaks its own Markov "language" over a shared word list; a document's
``quality`` is the share of its sentences drawn from that language (the rest is random
word salad). Validation documents are clean, so selecting on the quality score must lower a
proxy's validation loss, while ``noise_score`` is unrelated to it. ``targets=True`` also
writes evaluation targets from outside the corpus: clean reference documents
(``targets/reference.parquet``) and cloze items whose answer is the language's next sentence
and whose distractors are word salad (``targets/cloze.jsonl``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from metamix.base.atomic import atomic_path
from metamix.pipeline.config import TokenizerConfig
from metamix.pipeline.tokenizer import train_tokenizer

SYLLABLES = ["ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "de", "fa", "gu", "ho", "zi", "ve"]


def _words(rng: np.random.Generator, n: int) -> list[str]:
    out: set[str] = set()
    while len(out) < n:
        out.add("".join(rng.choice(SYLLABLES, size=rng.integers(1, 4))))
    return sorted(out)


def _language(rng: np.random.Generator, n_words: int) -> np.ndarray:
    """A sparse word-transition matrix: each word has a few likely successors."""
    trans = np.full((n_words, n_words), 1e-3)
    for i in range(n_words):
        trans[i, rng.choice(n_words, size=3, replace=False)] += rng.dirichlet(np.ones(3)) * 5
    return trans / trans.sum(axis=1, keepdims=True)


def _sentence(rng: np.random.Generator, words: list[str], trans: np.ndarray | None) -> str:
    n = int(rng.integers(5, 12))
    if trans is None:
        idx = rng.integers(0, len(words), size=n)
    else:
        idx = [int(rng.integers(len(words)))]
        for _ in range(n - 1):
            idx.append(int(rng.choice(len(words), p=trans[idx[-1]])))
    return " ".join(words[i] for i in idx).capitalize() + "."


def make_corpus(out_dir: Path, *, n_docs: int = 300, n_valid: int = 40,
                domains: tuple[str, ...] = ("web", "code"), seed: int = 0,
                nan_every: int = 17, targets: bool = False) -> dict[str, list[Path]]:
    """Write ``scored/part-*.parquet`` and ``validation/part-0.parquet`` under ``out_dir``
    (and ``targets/`` with ``targets=True``)."""
    rng = np.random.default_rng(seed)
    words = _words(rng, 120)
    langs = {d: _language(rng, len(words)) for d in domains}
    scored, valid = [], []
    for i in range(n_docs):
        domain = domains[i % len(domains)]
        quality = float(rng.uniform())
        n_sent = int(rng.integers(3, 10))
        sents = [_sentence(rng, words, langs[domain] if rng.uniform() < quality else None)
                 for _ in range(n_sent)]
        text = " ".join(sents)
        scored.append({
            "id": f"doc-{i:05d}", "text": text, "domain": domain, "source": "synthetic",
            "n_tokens": len(text.split()),
            "quality": float("nan") if nan_every and i % nan_every == 0 else quality
            + float(rng.normal(0, 0.05)),
            "noise_score": float(rng.normal()),
            "length_score": float(len(text)),
            "flag_count": int(rng.integers(0, 3)),
            "junk_drop_reason": "junk" if i % 23 == 5 else None,
        })
    for i in range(n_valid):
        domain = domains[i % len(domains)]
        text = " ".join(_sentence(rng, words, langs[domain]) for _ in range(6))
        valid.append({"id": f"val-{i:04d}", "text": text, "domain": domain,
                      "source": "synthetic", "n_tokens": len(text.split())})
    half = len(scored) // 2
    paths = {"scored": [_write(out_dir / "scored" / "part-00000.parquet", scored[:half]),
                        _write(out_dir / "scored" / "part-00001.parquet", scored[half:])],
             "validation": [_write(out_dir / "validation" / "part-00000.parquet", valid)]}
    if targets:
        reference = [{"id": f"ref-{i:04d}", "domain": "reference",
                      "text": " ".join(_sentence(rng, words, langs[domains[i % len(domains)]])
                                       for _ in range(6))} for i in range(n_valid)]
        paths["reference"] = [_write(out_dir / "targets" / "reference.parquet", reference)]
        cloze = out_dir / "targets" / "cloze.jsonl"
        with open(cloze, "w", encoding="utf-8") as fh:
            for i in range(n_valid):
                lang = langs[domains[i % len(domains)]]
                context = " ".join(_sentence(rng, words, lang) for _ in range(2))
                choices = [_sentence(rng, words, lang)] + [_sentence(rng, words, None)
                                                           for _ in range(2)]
                fh.write(json.dumps({"id": f"cloze-{i}", "context": context,
                                     "choices": choices, "answer": 0}) + "\n")
        paths["cloze"] = [cloze]
    return paths


def _write(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        pq.write_table(pa.Table.from_pylist(rows), tmp)
    return path


def make_tokenizer(path: Path, texts: list[str], vocab_size: int = 300) -> Path:
    tok = train_tokenizer(texts, TokenizerConfig(vocab_size=vocab_size, sample_docs=len(texts)))
    path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(path))
    return path


def corpus_texts(paths: list[Path]) -> list[str]:
    return [t for p in paths for t in pq.read_table(p, columns=["text"]).column(0).to_pylist()]


def make_family_corpus(out_dir: Path, *, n_docs: int = 600, seed: int = 0,
                       n_items: int = 40) -> dict[str, list[Path]]:
    """A corpus whose target families disagree: two sources per domain, ``common`` and
    ``niche``, each writing its own Markov language; ``quality`` is the share of a document's
    sentences in its source's language. Families ``alpha`` and ``beta`` are written in the
    common language, family ``niche`` in the niche one, so the niche source helps one
    family and wastes the other two's tokens. ``niche_score`` marks the niche source (with
    noise); ``noise_score`` is unrelated to anything.

    Writes ``scored/``, ``validation/`` and ``targets/<family>.parquet`` +
    ``targets/<family>_cloze.jsonl``."""
    rng = np.random.default_rng(seed)
    words = _words(rng, 120)
    langs = {"common": _language(rng, len(words)), "niche": _language(rng, len(words))}
    scored, valid = [], []
    for i in range(n_docs):
        source = "niche" if i % 3 == 0 else "common"
        quality = float(rng.uniform())
        sents = [_sentence(rng, words, langs[source] if rng.uniform() < quality else None)
                 for _ in range(int(rng.integers(3, 10)))]
        text = " ".join(sents)
        scored.append({
            "id": f"doc-{i:05d}", "text": text, "domain": ("web", "code")[i % 2],
            "source": source, "n_tokens": len(text.split()),
            "quality": quality + float(rng.normal(0, 0.05)),
            "niche_score": float(source == "niche") + float(rng.normal(0, 0.2)),
            "noise_score": float(rng.normal())})
    for i in range(n_items):
        text = " ".join(_sentence(rng, words, langs["common"]) for _ in range(6))
        valid.append({"id": f"val-{i:04d}", "text": text, "domain": ("web", "code")[i % 2],
                      "source": "common", "n_tokens": len(text.split())})
    half = len(scored) // 2
    paths = {"scored": [_write(out_dir / "scored" / "part-00000.parquet", scored[:half]),
                        _write(out_dir / "scored" / "part-00001.parquet", scored[half:])],
             "validation": [_write(out_dir / "validation" / "part-00000.parquet", valid)]}
    for family, lang in (("alpha", "common"), ("beta", "common"), ("niche", "niche")):
        ref = [{"id": f"{family}-{i:04d}", "text": " ".join(
            _sentence(rng, words, langs[lang]) for _ in range(6))} for i in range(n_items)]
        paths[family] = [_write(out_dir / "targets" / f"{family}.parquet", ref)]
        cloze = out_dir / "targets" / f"{family}_cloze.jsonl"
        with open(cloze, "w", encoding="utf-8") as fh:
            for i in range(n_items):
                context = " ".join(_sentence(rng, words, langs[lang]) for _ in range(2))
                choices = [_sentence(rng, words, langs[lang])] + [
                    _sentence(rng, words, None) for _ in range(2)]
                fh.write(json.dumps({"id": f"{family}-cloze-{i}", "context": context,
                                     "choices": choices, "answer": 0}) + "\n")
        paths[f"{family}_cloze"] = [cloze]
    return paths
