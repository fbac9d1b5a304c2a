"""The run's byte-level BPE: trained once per corpus, cached by corpus fingerprint.

``n_tokens`` and the proxy trainers of later stages must agree on what a token is, so
both load the file this module returns. Training reads a deterministic sample (the
documents whose id hashes lowest), so the same corpus gives the same tokenizer.

The score stage encodes each document once (``metamix.base.bpe``) and keeps the ids next
to the shard it wrote, in ``<run>/tokens/<stage>/<shard>.arrow``, so the proxy trainers'
token cache reads them instead of encoding the corpus again. Such a file names the
tokenizer (sha256), and the shard's manifest record holds its hash and the data file's; a
reader that finds another tokenizer, or either file changed, ignores it.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from metamix.base.atomic import atomic_path
from metamix.base.bpe import TOKEN_IDS_COLUMN, TOKENIZER_SHA256_KEY
from metamix.base.errors import UserError
from metamix.base.hashing import file_hash, id_hash_key, json_hash
from metamix.base.storage import arrow_source, as_path, is_remote
from metamix.pipeline.config import TokenizerConfig
from metamix.pipeline.manifest import shard_record_path

SPECIAL_TOKENS = ["<|endoftext|>", "<|pad|>"]


def fingerprint(shard_hashes: Iterable[str], cfg: TokenizerConfig) -> str:
    return json_hash({"shards": sorted(shard_hashes), "cfg": cfg.model_dump(exclude={"path"})})


def sample_texts(shards: list[Path], n_docs: int) -> list[str]:
    """The ``n_docs`` documents with the smallest id hash: stable under shard re-ordering."""
    scored: list[tuple[bytes, str]] = []
    for shard in shards:
        reader = pq.ParquetFile(arrow_source(shard))
        for batch in reader.iter_batches(columns=["id", "text"], batch_size=4096):
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


TOKEN_FILES_DIR = "tokens"
_META_TOKENIZER = b"tokenizer_sha256"


def token_ids_path(data_path: str | Path) -> Path:
    """Where the ids of ``<run>/<stage>/<shard>.parquet`` live:
    ``<run>/tokens/<stage>/<shard>.arrow``."""
    data = as_path(data_path)
    return data.parent.parent / TOKEN_FILES_DIR / data.parent.name / f"{data.stem}.arrow"


class TokenIdsFile:
    """Streams the ids of the rows a stage writes (its batches' ``TOKEN_IDS_COLUMN``) to
    ``token_ids_path(data_path)`` as an uncompressed Arrow IPC file, one record batch per
    batch: writing is a copy of the buffers (zstd Parquet cost ~5% of a heuristic-only
    run), and a big shard's ids never sit in memory. The schema names the tokenizer; the
    stage's shard record, written after both files, holds both files' content hashes."""

    def __init__(self, data_path: Path) -> None:
        self.data_path = as_path(data_path)
        self._stack = ExitStack()
        self._writer: pa.ipc.RecordBatchFileWriter | None = None

    def __enter__(self) -> TokenIdsFile:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._writer is not None:  # not finished: an error, the temporary file goes
            self._writer.close()
            self._writer = None
            self._stack.__exit__(*exc)

    def add(self, batch: pa.RecordBatch) -> None:
        index = batch.schema.get_field_index(TOKEN_IDS_COLUMN)
        if index < 0:
            return
        column = batch.column(index)
        if self._writer is None:
            tmp = self._stack.enter_context(atomic_path(token_ids_path(self.data_path)))
            field_meta = batch.schema.field(index).metadata or {}
            schema = pa.schema([("token_ids", column.type)], metadata={
                _META_TOKENIZER: field_meta[TOKENIZER_SHA256_KEY]})
            self._writer = pa.ipc.new_file(str(tmp), schema)
        self._writer.write_batch(pa.record_batch([column], names=["token_ids"]))

    def finish(self) -> tuple[Path, ...]:
        """Close and commit the file; the paths written (none if no batch carried ids, and
        then no file from an earlier run is left either)."""
        if self._writer is None:
            token_ids_path(self.data_path).unlink(missing_ok=True)
            return ()
        self._writer.close()
        self._writer = None
        self._stack.close()  # fsync and rename
        return (token_ids_path(self.data_path),)


def read_token_ids(data_path: str | Path, tokenizer_sha256: str
                   ) -> tuple[np.ndarray, np.ndarray] | None:
    """(ids, offsets) stored for ``data_path`` by the score stage, or None unless they are
    this tokenizer's and the shard's record still vouches for both files' contents."""
    data = as_path(data_path)
    path = token_ids_path(data)
    record = shard_record_path(data.parent.parent, data.parent.name, data.stem)
    if is_remote(data) or not path.is_file() or not record.is_file():
        return None
    try:
        outputs = json.loads(record.read_text())["outputs"]
        run_dir = data.parent.parent
        for file in (data, path):
            if outputs.get(file.relative_to(run_dir).as_posix()) != file_hash(file):
                return None
        with pa.memory_map(str(path)) as source:
            reader = pa.ipc.open_file(source)
            meta = reader.schema.metadata or {}
            if meta.get(_META_TOKENIZER, b"").decode() != tokenizer_sha256:
                return None
            column = reader.read_all().column("token_ids").combine_chunks()
    except (OSError, ValueError, KeyError, TypeError, pa.ArrowException):
        return None
    if column.null_count:
        return None
    offsets = column.offsets.to_numpy().astype(np.int64)
    return column.flatten().to_numpy().copy(), offsets - offsets[0]
