"""Token ids of many texts at once, identical to Hugging Face ``tokenizers`` for the same file.

Every consumer of the run's BPE (``n_tokens``, the n-gram perplexity scorer, the proxy
trainers' token cache) encodes through ``load_encoder``. ``tokenizers`` encodes a byte-level
BPE at 1–2 MB/s per core and builds a Python ``Encoding`` (tokens, offsets) per document;
``fastokens`` reads the same ``tokenizer.json`` and returns one flat id buffer for a whole
batch at 30–90 MB/s per core (``bench/score_speed.py --encoders`` measures both, and tiktoken
loaded with the run's own ranks). Ids must not change with the encoder, so a loaded file is
checked against ``tokenizers`` on probe texts (every token of its vocabulary, special tokens
inside text, mixed scripts and whitespace runs); a file that fails the check, or that
``fastokens`` cannot read, is encoded by ``tokenizers`` itself, with a warning.
"""

from __future__ import annotations

import json
import os
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

#: Internal batch column carrying each row's token ids between pipeline stages (never written
#: to a Parquet output); its field metadata names the tokenizer by sha256.
TOKEN_IDS_COLUMN = "__token_ids"
TOKENIZER_SHA256_KEY = b"tokenizer_sha256"

# Texts on which a BPE implementation is most likely to differ from another: special tokens
# inside text, whitespace runs before words and at the end, contractions, digits, mixed scripts.
_PROBES = (
    "Hello world!  It's  the\tend.\n\n\nNew   paragraph <|endoftext|> after <|pad|>x",
    "I'll we've they're don't 'S 'LL 12345 3.14159 1,000,000 x²³ ½ Ⅻ",
    "Grüße, naïve façade — «quoted» “curly” ‘single’ … €100 ¥ £",
    "日本語のテキスト、中文文本。한국어 텍스트 Ελληνικά русский עברית العربية हिन्दी",
    "emoji 😀👍🏽👨‍👩‍👧 zero\u200bwidth\ufeffbom\u00a0nbsp\u3000ideographic \r\n\r\n",
    "    def f(x):\n        return {'a': [1, 2]}  # comment\n\t\t}\n",
    "<|endoftext|><|endoftext|> <|endoftext|>\n<|pad|",
    "   ", "\n", "a", "",
)


class BpeEncoder:
    """Encodes lists of texts into one flat id array plus per-text offsets.

    ``backend`` is ``"fastokens"`` or ``"tokenizers"`` (the fallback); both give the ids
    ``tokenizers.Tokenizer.encode(text, add_special_tokens=False)`` gives.
    """

    def __init__(self, path: str, prefer_fast: bool = True,
                 check_record: str | None = None) -> None:
        """``check_record``: a file that remembers a passed check of this tokenizer file
        with these library versions (read, or written after a check that passes): each
        worker of each command otherwise spends ~0.1 s checking the same file again."""
        self.path = path
        self._reference: Any = None
        self._fast: Any = _load_fast(path) if prefer_fast else None
        passed = _recorded_check(path, check_record) if self._fast is not None else None
        self.vocab_size = (passed["vocab_size"] if passed
                           else self.reference.get_vocab_size())
        self.dtype = np.uint16 if self.vocab_size <= 1 << 16 else np.uint32
        if self._fast is not None and not passed:
            if not self._matches_reference():
                warnings.warn(f"{path}: fastokens gives other ids than tokenizers for this "
                              "file; encoding with tokenizers (slower)", RuntimeWarning,
                              stacklevel=2)
                self._fast = None
            elif check_record is not None:
                _record_check(path, check_record, self.vocab_size)
        self.backend = "fastokens" if self._fast is not None else "tokenizers"

    @property
    def reference(self) -> Any:
        """The ``tokenizers`` encoder of the file (loaded on first use)."""
        if self._reference is None:
            from tokenizers import Tokenizer

            self._reference = Tokenizer.from_file(self.path)
        return self._reference

    def token_to_id(self, token: str) -> int | None:
        return self.reference.token_to_id(token)

    def encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(ids, offsets): text ``i``'s ids are ``ids[offsets[i]:offsets[i + 1]]``; ids are
        uint16 when the vocabulary fits, else uint32; offsets are int64."""
        if self._fast is not None:
            flat, offsets = self._fast.encode_batch_flat(texts)
            ids = np.frombuffer(flat, dtype=np.uint32)
            offs = np.frombuffer(offsets, dtype=np.uint64).astype(np.int64)
            return ids.astype(self.dtype), offs
        return self._encode_reference(texts)

    def encode_lists(self, texts: list[str]) -> list[np.ndarray]:
        ids, offsets = self.encode(texts)
        return [ids[offsets[i]:offsets[i + 1]] for i in range(len(texts))]

    def count(self, texts: list[str]) -> np.ndarray:
        """Tokens per text (int64)."""
        return np.diff(self.encode(texts)[1])

    def _encode_reference(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        parts: list[np.ndarray] = []
        lengths: list[int] = []
        # Encodings carry offsets and strings per token (~40 bytes each): small groups keep
        # their memory at a few MB whatever the batch size.
        for start in range(0, len(texts), 64):
            for enc in self.reference.encode_batch_fast(texts[start:start + 64],
                                                        add_special_tokens=False):
                parts.append(np.asarray(enc.ids, dtype=self.dtype))
                lengths.append(len(enc.ids))
        offsets = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        ids = np.concatenate(parts) if parts else np.zeros(0, dtype=self.dtype)
        return ids, offsets

    def _matches_reference(self) -> bool:
        vocab = self.reference.decode_batch([[i] for i in range(self.vocab_size)],
                                            skip_special_tokens=False)
        probes = [*_PROBES, *vocab, " ".join(vocab[:2000]), "".join(vocab[-2000:])]
        fast_ids, fast_offsets = self.encode(probes)
        ref_ids, ref_offsets = self._encode_reference(probes)
        return bool(np.array_equal(fast_offsets, ref_offsets)
                    and np.array_equal(fast_ids, ref_ids))


def _check_key(path: str) -> dict[str, Any]:
    """What a passed check holds for: this file's bytes, these two libraries' versions."""
    from importlib.metadata import version

    from metamix.base.hashing import file_sha256

    return {"tokenizer_sha256": file_sha256(path), "fastokens": version("fastokens"),
            "tokenizers": version("tokenizers")}


def _recorded_check(path: str, record: str | None) -> dict[str, Any] | None:
    """The recorded check when it holds for this file and these versions, else None."""
    if record is None:
        return None
    try:
        data = json.loads(Path(record).read_text())
        key = _check_key(path)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or any(data.get(k) != v for k, v in key.items()):
        return None
    return data if isinstance(data.get("vocab_size"), int) else None


def _record_check(path: str, record: str, vocab_size: int) -> None:
    """Best effort: a folder that cannot be written only means the check runs again."""
    from metamix.base.atomic import write_bytes_atomic

    try:
        data = {**_check_key(path), "vocab_size": vocab_size}
        write_bytes_atomic(Path(record), json.dumps(data, sort_keys=True).encode())
    except OSError:
        pass


def _load_fast(path: str) -> Any:
    try:
        import fastokens
    except ImportError:
        return None
    try:
        return fastokens.Tokenizer.from_file(path)
    except Exception as exc:  # an unsupported model or pre-tokenizer: use the reference
        warnings.warn(f"{path}: fastokens cannot load this tokenizer ({exc}); encoding with "
                      "tokenizers (slower)", RuntimeWarning, stacklevel=3)
        return None


def load_encoder(path: str | os.PathLike[str],
                 check_record: str | os.PathLike[str] | None = None) -> BpeEncoder:
    """One checked encoder per tokenizer file and process (workers reuse it across shards);
    a file rewritten in place (new size or mtime) is loaded again. ``check_record``: see
    ``BpeEncoder`` (a run passes one beside its cached tokenizer).

    ``METAMIX_BPE=tokenizers`` forces the reference implementation (for comparisons)."""
    st = os.stat(path)
    return _load_encoder(os.path.abspath(path), st.st_mtime_ns, st.st_size,
                         os.environ.get("METAMIX_BPE", "") != "tokenizers",
                         None if check_record is None else os.fspath(check_record))


@lru_cache(maxsize=4)
def _load_encoder(path: str, mtime_ns: int, size: int, prefer_fast: bool,
                  check_record: str | None) -> BpeEncoder:
    return BpeEncoder(path, prefer_fast=prefer_fast, check_record=check_record)


def shared_token_ids(batch: Any, tokenizer_sha256: str) -> Any:
    """The ``TOKEN_IDS_COLUMN`` of a record batch when it was encoded with the tokenizer
    whose file has this sha256, else None (no such column, or another tokenizer)."""
    index = batch.schema.get_field_index(TOKEN_IDS_COLUMN)
    if index < 0:
        return None
    meta = batch.schema.field(index).metadata or {}
    if meta.get(TOKENIZER_SHA256_KEY, b"").decode() != tokenizer_sha256:
        return None
    return batch.column(index)
