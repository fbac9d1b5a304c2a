"""Tokenized-corpus cache: every document's BPE ids, tokenized once and memory-mapped after.

A Meta-rater sweep trains K proxies on different subsets of the same scored shards; without
a cache each run would re-tokenize tens of MB of text. The cache directory is keyed by the
hashes of the input Parquet files and of the tokenizer file, so a changed shard or tokenizer
gets a fresh cache and a stale one is never read. Documents keep the row order of the input
files (sorted paths, then row order), so row ``i`` here is row ``i`` of the score matrix.

Ids come from the score stage's single encoding pass when it stored them for these exact
files and this tokenizer (``metamix.pipeline.tokenizer.read_token_ids``); other files are
encoded here with the same fast encoder, so either way the ids are identical.

Layout of ``<cache_root>/<key>/``: ``tokens.npy`` (all ids concatenated, uint16 when the vocab
fits, else uint32), ``offsets.npy`` (int64, n_docs + 1), ``docs.parquet`` (id, domain), and
``meta.json`` written last (its presence means the cache is complete).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from metamix.base.atomic import atomic_path, write_json_atomic
from metamix.base.bpe import BpeEncoder, load_encoder
from metamix.base.hashing import file_sha256
from metamix.pipeline.tokenizer import read_token_ids

CACHE_VERSION = "1"
EOS_TOKEN = "<|endoftext|>"
_BATCH_ROWS = 2048


def cache_key(paths: list[str], tokenizer_path: str) -> str:
    parts = [CACHE_VERSION, file_sha256(tokenizer_path), *[file_sha256(p) for p in paths]]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:20]


@dataclass(frozen=True)
class TokenizedCorpus:
    """Per-document token ids of a list of Parquet files (memory-mapped, read-only)."""

    path: str
    tokens: np.ndarray
    offsets: np.ndarray
    ids: np.ndarray
    domains: np.ndarray
    vocab_size: int
    eos_id: int

    @property
    def n_docs(self) -> int:
        return len(self.offsets) - 1

    def doc_lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def doc(self, i: int) -> np.ndarray:
        return self.tokens[self.offsets[i] : self.offsets[i + 1]]


def build_token_cache(paths: list[str | os.PathLike[str]], tokenizer_path: str | os.PathLike[str],
                      cache_root: str | os.PathLike[str]) -> Path:
    """Tokenize ``paths`` (columns id, text, domain) unless a complete cache exists; return it."""
    files = [str(p) for p in paths]
    tok_path = str(tokenizer_path)
    out = Path(cache_root) / cache_key(files, tok_path)
    if (out / "meta.json").is_file():
        return out
    encoder = load_encoder(tok_path)
    eos_id = encoder.token_to_id(EOS_TOKEN)
    vocab = encoder.vocab_size
    if eos_id is None:
        raise ValueError(f"{tok_path}: tokenizer has no {EOS_TOKEN} token")
    dtype = np.uint16 if vocab <= np.iinfo(np.uint16).max + 1 else np.uint32
    tok_sha = file_sha256(tok_path)
    chunks: list[np.ndarray] = []
    lengths: list[np.ndarray] = []
    ids: list[str] = []
    domains: list[str] = []
    for path in files:
        stored = read_token_ids(path, tok_sha)
        n_rows = 0
        columns = ["id", "domain"] if stored is not None else ["id", "text", "domain"]
        for batch in pq.ParquetFile(path).iter_batches(batch_size=_BATCH_ROWS, columns=columns):
            if stored is None:
                flat, offsets = _encode(encoder, batch)
                chunks.append(flat.astype(dtype, copy=False))
                lengths.append(np.diff(offsets))
            ids.extend(batch.column("id").to_pylist())
            domains.extend(batch.column("domain").to_pylist())
            n_rows += batch.num_rows
        if stored is not None:
            flat, offsets = stored
            if len(offsets) != n_rows + 1:
                raise ValueError(f"{path}: stored token ids have {len(offsets) - 1} rows, the "
                                 f"file has {n_rows}")
            chunks.append(flat.astype(dtype, copy=False))
            lengths.append(np.diff(offsets))
    out.mkdir(parents=True, exist_ok=True)
    doc_lengths = np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64)
    offsets = np.zeros(len(doc_lengths) + 1, dtype=np.int64)
    np.cumsum(doc_lengths, out=offsets[1:])
    tokens = np.concatenate(chunks) if chunks else np.zeros(0, dtype=dtype)
    for name, arr in (("tokens.npy", tokens), ("offsets.npy", offsets)):
        with atomic_path(out / name) as tmp, open(tmp, "wb") as fh:
            np.save(fh, arr)
    with atomic_path(out / "docs.parquet") as tmp:
        pq.write_table(pa.table({"id": pa.array(ids, pa.string()),
                                 "domain": pa.array(domains, pa.string())}), tmp)
    write_json_atomic(out / "meta.json", {"files": files, "tokenizer": tok_path,
                                          "vocab_size": vocab, "eos_id": eos_id,
                                          "n_docs": len(doc_lengths),
                                          "n_tokens": int(offsets[-1])})
    return out


def _encode(encoder: BpeEncoder, batch: pa.RecordBatch) -> tuple[np.ndarray, np.ndarray]:
    texts = [t or "" for t in batch.column("text").to_pylist()]
    return encoder.encode(texts)


@lru_cache(maxsize=4)
def load_token_cache(path: str) -> TokenizedCorpus:
    """Open a cache built by ``build_token_cache`` (cached per process: workers reuse it)."""
    root = Path(path)
    meta = json.loads((root / "meta.json").read_text())
    docs = pq.read_table(root / "docs.parquet")
    return TokenizedCorpus(
        path=str(root),
        tokens=np.load(root / "tokens.npy", mmap_mode="r"),
        offsets=np.load(root / "offsets.npy"),
        ids=np.asarray(docs.column("id").to_pylist(), dtype=object),
        domains=np.asarray(docs.column("domain").to_pylist(), dtype=object),
        vocab_size=int(meta["vocab_size"]),
        eos_id=int(meta["eos_id"]),
    )
