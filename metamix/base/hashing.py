"""Stable digests for manifests, cache keys and config fingerprints.

A digest that changes between runs would break resume and byte-identical reruns, so every
one is computed from canonical bytes: JSON with sorted keys, or a file's contents.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from metamix.base.storage import open_binary


def json_hash(obj: Any, length: int = 16) -> str:
    """sha256 of ``obj`` as sorted-key JSON (non-JSON values as ``str``), hex, truncated."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def _digest_file(path: str | os.PathLike[str], h: Any) -> str:
    with open_binary(path) as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def file_hash(path: str | os.PathLike[str]) -> str:
    """blake2b-128 of a file's bytes: the fingerprint manifests record."""
    return _digest_file(path, hashlib.blake2b(digest_size=16))


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's bytes (model files and token caches are keyed by it)."""
    return _digest_file(path, hashlib.sha256())


def id_hash_key(doc_id: str) -> bytes:
    """8-byte blake2b of a document id: a deterministic order for samples and splits."""
    return hashlib.blake2b(doc_id.encode(), digest_size=8).digest()
