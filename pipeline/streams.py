"""Compressed or plain JSONL bytes → lines, streamed in bounded steps.

zstd frames and gzip members are read in turn; a stream cut short or corrupt raises
``TruncatedInput`` with the byte offset only after every whole line before the break has
been yielded (``input.on_truncated: quarantine`` keeps them).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import zstandard

_BOM = b"\xef\xbb\xbf"
_LINE_END = re.compile(rb"\r\n|\r|\n")
_CHUNK = 1 << 20


class TruncatedInput(Exception):
    """Compressed input that ends before its last frame/member does."""

    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(reason)
        self.offset = offset


def zst_chunks(fh: BinaryIO) -> Iterator[bytes]:
    """Decompressed bytes of every zstd frame in turn; a frame cut short is an error with
    the byte offset where the input ended (a stream reader would stop there in silence)."""
    dctx = zstandard.ZstdDecompressor()
    obj = dctx.decompressobj()
    offset = 0
    in_frame = False
    while chunk := fh.read(_CHUNK):
        offset += len(chunk)
        while chunk:
            try:
                out = obj.decompress(chunk)
            except zstandard.ZstdError as exc:
                raise TruncatedInput(offset - len(chunk), f"corrupt zstd data: {exc}") from None
            in_frame = True
            if out:
                yield out
            if obj.eof:          # a frame ended: the rest of the chunk starts the next one
                chunk, obj, in_frame = obj.unused_data, dctx.decompressobj(), False
            else:
                chunk = b""
    if in_frame:
        raise TruncatedInput(offset, "the last zstd frame is cut short")


_GZ_READ = 64 << 10


def gz_chunks(fh: BinaryIO) -> Iterator[bytes]:
    """Decompressed bytes of every gzip member in turn, at most ``_CHUNK`` per step, so
    every byte before a break reaches the line splitter before the error does (as
    ``zst_chunks``); zero padding between members is skipped, as ``gzip`` does."""
    obj = zlib.decompressobj(wbits=31)
    offset = 0
    started = False          # bytes of the current member seen
    while True:
        data = fh.read(_GZ_READ)
        offset += len(data)
        at_end = not data
        while True:
            if not started and not (data := data.lstrip(b"\0")):
                break
            try:
                out = obj.decompress(data, _CHUNK)
            except zlib.error as exc:
                raise TruncatedInput(offset - len(data),
                                     f"gzip stream cut short or corrupt: {exc}") from None
            started = True
            if out:
                yield out
            if obj.eof:      # a member ended: the rest of the data starts the next one
                data, obj, started = obj.unused_data, zlib.decompressobj(wbits=31), False
                continue
            data = obj.unconsumed_tail
            if not data and len(out) < _CHUNK:   # all taken in, no output held back
                break
        if at_end:
            break
    if started:
        raise TruncatedInput(offset, "gzip stream cut short or corrupt: the last member "
                             "ends early")


def raw_chunks(path: Path, fh: BinaryIO) -> Iterator[bytes]:
    name = path.name.lower()
    if name.endswith(".gz"):
        return gz_chunks(fh)
    if name.endswith(".zst"):
        return zst_chunks(fh)
    return iter(lambda: fh.read(_CHUNK), b"")


def lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Lines ending in \\n, \\r\\n or a lone \\r; a leading UTF-8 BOM is dropped.

    Only each new chunk is searched for line ends, and an unfinished line is kept as its
    pieces, joined once when it ends: a line of many chunks costs its length, not its
    length squared (re-splitting a growing buffer took 158 s for one 100 MB line)."""
    split = _split_lines(chunks)
    for line in split:   # the BOM is checked on the whole first line: chunks can cut it
        yield line.removeprefix(_BOM)
        break
    yield from split


def _split_lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    pieces: list[bytes] = []   # the unfinished line
    after_cr = False           # the last chunk ended with \r: a leading \n completes \r\n
    for chunk in chunks:
        if not chunk:
            continue
        if after_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        after_cr = chunk.endswith(b"\r")
        parts = _LINE_END.split(chunk)
        if len(parts) == 1:
            if chunk:
                pieces.append(chunk)
            continue
        pieces.append(parts[0])
        yield b"".join(pieces)
        yield from parts[1:-1]
        pieces = [parts[-1]] if parts[-1] else []
    if tail := b"".join(pieces):
        yield tail
