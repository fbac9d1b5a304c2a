"""Local paths and object-store URIs (``s3://``, ``gs://``) behind one pathlib API.

A URI becomes a ``UPath`` (universal-pathlib over fsspec: s3fs, gcsfs), so the code that
joins, globs, tests and unlinks run-folder paths works unchanged on either; a plain path
stays a ``pathlib.Path`` and nothing about local runs changes. Credentials and endpoints
come from the backends' standard environment variables (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``, ``GOOGLE_APPLICATION_CREDENTIALS``...).

Listings are never cached: Ray workers on other machines write into the same prefixes
while the driver lists them, and a cached listing would hide their files.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import IO, Any

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_NO_LISTINGS_CACHE = {"use_listings_cache": False}


def is_uri(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names an object store (``file://`` counts as local)."""
    if is_remote(path):
        return True
    text = os.fspath(path)
    return bool(_URI.match(text)) and not text.startswith("file://")


def is_remote(path: Any) -> bool:
    """Whether ``path`` is a ``UPath`` on an object store (not a local file)."""
    protocol = getattr(path, "protocol", None)
    return isinstance(protocol, str) and protocol not in ("", "file", "local")


def as_path(path: str | os.PathLike[str]) -> Path:
    """A ``UPath`` for an object-store URI, else a ``pathlib.Path``."""
    if is_remote(path):
        return path  # type: ignore[return-value]
    text = os.fspath(path)
    if text.startswith("file://"):
        return Path(text.removeprefix("file://"))
    if _URI.match(text):
        try:
            from upath import UPath
        except ImportError:  # a dependency; only a broken install lacks it
            raise RuntimeError("object-store paths need universal-pathlib") from None
        try:
            return UPath(text, **_NO_LISTINGS_CACHE)
        except (ImportError, ValueError) as exc:
            from metamix.base.errors import UserError

            raise UserError(f"{text}: no filesystem for this URI ({exc}); for s3:// install "
                            "s3fs, for gs:// gcsfs (pip install 'metamix[cloud]')") from None
    return Path(text)


def open_binary(path: str | os.PathLike[str]) -> IO[bytes]:
    """Open for reading bytes, locally or on an object store (seekable either way)."""
    p = as_path(path)
    if is_remote(p):
        return p.open("rb")
    return open(p, "rb")


def arrow_source(path: str | os.PathLike[str]) -> str | IO[bytes]:
    """What pyarrow reads best: a local file by name (Arrow's own reader, which closes it),
    an object-store file as an open stream. A Python file object for a local file would put
    every read of the hot path through Python and keep the descriptor open until GC."""
    p = as_path(path)
    return open_binary(p) if is_remote(p) else os.fspath(p)


def relative(path: Any, base: Any) -> str:
    """``path`` relative to ``base`` as a POSIX string (also across object-store paths)."""
    if not (is_remote(path) or is_remote(base)):
        return os.path.relpath(path, base)
    p, b = str(path).rstrip("/"), str(base).rstrip("/")
    if p.startswith(b + "/"):
        return p[len(b) + 1:]
    return p


def local_copy(path: str | os.PathLike[str]) -> str:
    """A local file with ``path``'s contents: the path itself when it is local, else a
    download into this machine's temp folder (for libraries that only open local files,
    such as the tokenizers loaded in workers)."""
    p = as_path(path)
    if not is_remote(p):
        return str(p)
    data = p.read_bytes()
    folder = Path(tempfile.gettempdir()) / "metamix-downloads"
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / f"{hashlib.blake2b(data, digest_size=16).hexdigest()}-{p.name}"
    if not dest.is_file():
        tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, dest)
    return str(dest)


def upload(local: Path, dest: Any) -> None:
    """Put a finished local file at ``dest``: one object, visible whole or not at all."""
    dest.fs.put_file(str(local), dest.path)


def require_local(path: Any, what: str) -> None:
    """Stop with one clear message where a step needs a local folder (memory-mapped proxy
    caches, the report's page)."""
    if is_remote(path):
        from metamix.base.errors import UserError

        raise UserError(f"{what} needs a local out_dir (it memory-maps token caches and "
                        f"writes many small files), not {path}; score and select work on "
                        "object stores")
