"""Evaluation sets beyond the validation split: reference texts and cloze items, tokenized
into a cache every proxy trainer reads like the validation split.

Each document belongs to a *group* (stored as its domain, e.g. ``gnu_manuals/fit``), so a
trainer's per-domain losses are per-group losses. Cloze items are stored as context tokens
followed by the answer's tokens, with per-token weights (``weights.npy``): 0 on the context
and 1/len(answer) on the answer, so a group's loss is the mean over items of the answer's
per-token negative log-likelihood (DataDecide's per-token normalised likelihood of the
correct continuation). ``eval.parquet`` holds the same documents as text (id, domain,
context, text) for external trainers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from metamix.base.atomic import atomic_path, write_json_atomic
from metamix.base.hashing import file_sha256
from metamix.mixtures.proxies.tokens import EOS_TOKEN
from metamix.pipeline.tokenizer import load_tokenizer

EVAL_CACHE_VERSION = "1"


@dataclass(frozen=True)
class EvalDoc:
    """One scored sequence: ``text`` is scored; ``context`` (may be empty) conditions it."""

    id: str
    group: str
    text: str
    context: str = ""


def _key(docs: Sequence[EvalDoc], tokenizer_path: str) -> str:
    h = hashlib.sha256()
    h.update(f"{EVAL_CACHE_VERSION}\0{file_sha256(tokenizer_path)}\0".encode())
    for d in docs:
        h.update("\0".join((d.id, d.group, d.context, d.text)).encode() + b"\1")
    return "eval-" + h.hexdigest()[:20]


def build_eval_cache(docs: Sequence[EvalDoc], tokenizer_path: str | Path,
                     cache_root: str | Path) -> Path:
    """Tokenize ``docs`` unless a complete cache of the same documents exists; return it."""
    if not docs:
        raise ValueError("no evaluation documents")
    tok_path = str(tokenizer_path)
    out = Path(cache_root) / _key(docs, tok_path)
    if (out / "meta.json").is_file():
        return out
    tok = load_tokenizer(tok_path)
    eos_id = tok.token_to_id(EOS_TOKEN)
    vocab = tok.get_vocab_size()
    if eos_id is None:
        raise ValueError(f"{tok_path}: tokenizer has no {EOS_TOKEN} token")
    dtype = np.uint16 if vocab <= np.iinfo(np.uint16).max + 1 else np.uint32
    texts = tok.encode_batch([d.text for d in docs], add_special_tokens=False)
    contexts = tok.encode_batch([d.context for d in docs], add_special_tokens=False)
    chunks, weights, lengths = [], [], []
    for doc, text, context in zip(docs, texts, contexts, strict=True):
        ids = np.asarray([*context.ids, *text.ids], dtype=dtype)
        w = np.zeros(len(ids), dtype=np.float32)
        if doc.context:   # a cloze item: the mean over items of the per-token loss
            w[len(context.ids):] = 1.0 / max(len(text.ids), 1)
        else:
            w[:] = 1.0
        chunks.append(ids)
        weights.append(w)
        lengths.append(len(ids))
    out.mkdir(parents=True, exist_ok=True)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    arrays = {"tokens.npy": np.concatenate(chunks), "offsets.npy": offsets,
              "weights.npy": np.concatenate(weights)}
    for name, arr in arrays.items():
        with atomic_path(out / name) as tmp, open(tmp, "wb") as fh:
            np.save(fh, arr)
    table = pa.table({"id": [d.id for d in docs], "domain": [d.group for d in docs],
                      "context": [d.context for d in docs], "text": [d.text for d in docs]})
    for name, tab in (("docs.parquet", table.select(["id", "domain"])), ("eval.parquet", table)):
        with atomic_path(out / name) as tmp:
            pq.write_table(tab, tmp)
    write_json_atomic(out / "meta.json", {
        "files": [str(out / "eval.parquet")], "tokenizer": tok_path, "vocab_size": vocab,
        "eos_id": eos_id, "n_docs": len(docs), "n_tokens": int(offsets[-1]),
        "groups": sorted({d.group for d in docs})})
    return out


def group_sizes(cache: str | Path) -> dict[str, int]:
    """Documents per group of an evaluation cache (from its metadata and docs table)."""
    table = pq.read_table(Path(cache) / "docs.parquet", columns=["domain"])
    counts: dict[str, int] = {}
    for group in table.column(0).to_pylist():
        counts[group] = counts.get(group, 0) + 1
    return dict(sorted(counts.items()))


def read_meta(cache: str | Path) -> dict:
    return json.loads((Path(cache) / "meta.json").read_text())
