"""Megatron-LM indexed datasets (``<prefix>.bin`` / ``<prefix>.idx``), written without
Megatron: the format ``megatron.core.datasets.indexed_dataset.IndexedDataset`` reads and
``tools/preprocess_data.py`` writes, one sequence per document.

``.bin`` is every document's token ids back to back, in one dtype. ``.idx`` is, little
endian: the magic ``MMIDIDX\\0\\0``; version ``<Q`` 1; the dtype code ``<B``; the sequence
count ``<Q``; the document-index count ``<Q`` (documents + 1); then the sequence lengths
(int32), the byte offset of each sequence in ``.bin`` (int64), and the document indices
(int64: 0, then the sequence count at the end of each document).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np

from metamix.base.atomic import commit_point, write_bytes_atomic

INDEX_HEADER = b"MMIDIDX\x00\x00"
#: Megatron's DType codes
DTYPE_CODES: dict[type[np.number], int] = {
    np.uint8: 1, np.int8: 2, np.int16: 3, np.int32: 4, np.int64: 5, np.float64: 6,
    np.float32: 7, np.uint16: 8}


def _with(prefix: Path, suffix: str) -> Path:
    """``prefix`` + suffix (a domain name may hold dots, so no ``with_suffix``)."""
    return prefix.parent / (prefix.name + suffix)


def optimal_dtype(vocab_size: int) -> type[np.number]:
    """What ``preprocess_data.py`` picks: uint16 while every id fits, else int32."""
    return np.uint16 if vocab_size < 65500 else np.int32


class IndexedDatasetWriter:
    """Append documents, then ``close``: ``.bin`` streams into a temporary file renamed when
    the index is written, so a killed export leaves no half dataset under the final names
    (and the next command removes the temporary file)."""

    def __init__(self, prefix: str | Path, dtype: type[np.number]) -> None:
        self.prefix = Path(prefix)
        self.dtype = dtype
        self.prefix.parent.mkdir(parents=True, exist_ok=True)
        self._bin_path = _with(self.prefix, ".bin")
        self._bin_tmp = self._bin_path.with_name(f".{self._bin_path.name}.tmp-{os.getpid()}")
        self._bin: BinaryIO = open(self._bin_tmp, "wb")  # noqa: SIM115 - closed in close()
        self.lengths: list[int] = []

    def add_document(self, ids: np.ndarray) -> None:
        self._bin.write(np.asarray(ids, dtype=self.dtype).tobytes(order="C"))
        self.lengths.append(len(ids))

    def close(self) -> None:
        self._bin.flush()
        os.fsync(self._bin.fileno())
        self._bin.close()
        lengths = np.array(self.lengths, dtype=np.int32)
        pointers = np.zeros(len(lengths), dtype=np.int64)
        if len(lengths) > 1:
            pointers[1:] = np.cumsum(lengths[:-1], dtype=np.int64) * np.dtype(self.dtype).itemsize
        documents = np.arange(len(lengths) + 1, dtype=np.int64)
        header = (INDEX_HEADER + struct.pack("<Q", 1) + struct.pack("<B", DTYPE_CODES[self.dtype])
                  + struct.pack("<QQ", len(lengths), len(documents)))
        commit_point("before", self._bin_path)
        os.replace(self._bin_tmp, self._bin_path)
        commit_point("after", self._bin_path)
        write_bytes_atomic(_with(self.prefix, ".idx"), header + lengths.tobytes()
                           + pointers.tobytes() + documents.tobytes())

    def __enter__(self) -> IndexedDatasetWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self._bin.close()
            self._bin_tmp.unlink(missing_ok=True)


def read_indexed_dataset(prefix: str | Path) -> list[np.ndarray]:
    """Every document's ids, read by the layout above (a check that needs no Megatron)."""
    prefix = Path(prefix)
    raw = _with(prefix, ".idx").read_bytes()
    if raw[:9] != INDEX_HEADER or struct.unpack_from("<Q", raw, 9)[0] != 1:
        raise ValueError(f"{prefix}.idx: not a Megatron index (version 1)")
    code = raw[17]
    dtype = {v: k for k, v in DTYPE_CODES.items()}[code]
    n_seq, n_doc = struct.unpack_from("<QQ", raw, 18)
    offset = 34
    lengths = np.frombuffer(raw, np.int32, n_seq, offset)
    pointers = np.frombuffer(raw, np.int64, n_seq, offset + 4 * n_seq)
    np.frombuffer(raw, np.int64, n_doc, offset + 12 * n_seq)   # document indices
    data = _with(prefix, ".bin").read_bytes()
    if n_seq and pointers[-1] + lengths[-1] * np.dtype(dtype).itemsize != len(data):
        raise ValueError(f"{prefix}.bin: size does not match its index")
    return [np.frombuffer(data, dtype, int(n), int(p))
            for n, p in zip(lengths, pointers, strict=True)]
