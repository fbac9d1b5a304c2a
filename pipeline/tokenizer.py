"""The run's byte-level BPE: trained once per corpus, cached by corpus fingerprint.

``n_tokens`` and the proxy trainers of later stages must agree on what a token is, so
both load the file this module returns. Training reads a deterministic sample (the
documents whose id hashes lowest), so the same corpus gives the same tokenizer.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path

import pyarrow.parquet as pq
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from metamix.base.atomic import atomic_path
from metamix.base.errors import UserError
from metamix.base.hashing import id_hash_key, json_hash
from metamix.pipeline.config import TokenizerConfig

SPECIAL_TOKENS = ["<|endoftext|>", "<|pad|>"]


def fingerprint(shard_hashes: Iterable[str], cfg: TokenizerConfig) -> str:
    return json_hash({"shards": sorted(shard_hashes), "cfg": cfg.model_dump(exclude={"path"})})


def sample_texts(shards: list[Path], n_docs: int) -> list[str]:
    """The ``n_docs`` documents with the smallest id hash: stable under shard re-ordering."""
    scored: list[tuple[bytes, str]] = []
    for shard in shards:
        for batch in pq.ParquetFile(shard).iter_batches(columns=["id", "text"], batch_size=4096):
            for doc_id, text in zip(batch.column("id").to_pylist(),
                                    batch.column("text").to_pylist(), strict=True):
                key = id_hash_key(doc_id)
                item = (_neg(key), text)
                if len(scored) < n_docs:
                    heapq.heappush(scored, item)
                elif item > scored[0]:
                    heapq.heapreplace(scored, item)
    return [text for _, text in sorted(scored, reverse=True)]


def _neg(key: bytes) -> bytes:
    """Invert a hash so a min-heap keeps the smallest hashes."""
    return bytes(255 - b for b in key)


def train_tokenizer(texts: list[str], cfg: TokenizerConfig) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=cfg.vocab_size,
        min_frequency=cfg.min_frequency,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_chunks(texts), trainer=trainer, length=len(texts))
    return tok


def _chunks(texts: list[str]) -> Iterator[str]:
    # Long documents are fed in pieces so one huge file cannot dominate pair counts' memory.
    for text in texts:
        for start in range(0, len(text), 100_000):
            yield text[start : start + 100_000]


def ensure_tokenizer(cfg: TokenizerConfig, base: Path, cache_dir: Path, shards: list[Path],
                     shard_hashes: list[str]) -> Path:
    """Return the tokenizer file to use: the configured one, or a cached/trained one."""
    if cfg.path:
        path = Path(cfg.path) if Path(cfg.path).is_absolute() else base / cfg.path
        if not path.is_file():
            raise UserError(f"tokenizer.path: file not found: {path}")
        load_tokenizer(str(path))
        return path
    path = cache_dir / f"tokenizer-{fingerprint(shard_hashes, cfg)}.json"
    if path.is_file():
        return path
    tok = train_tokenizer(sample_texts(shards, cfg.sample_docs), cfg)
    with atomic_path(path) as tmp:
        tok.save(str(tmp))
    return path


@lru_cache(maxsize=4)
def load_tokenizer(path: str) -> Tokenizer:
    try:
        return Tokenizer.from_file(path)
    except Exception as exc:  # tokenizers raises a plain Exception for bad files
        raise UserError(f"{path}: not a tokenizers JSON file: {exc}") from None
