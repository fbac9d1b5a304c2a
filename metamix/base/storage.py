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
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs

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
        check_uri(text)
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


#: S3's bucket-name rule: 3-63 lowercase letters, digits, dots and hyphens, a letter or digit
#: at each end. ``s3://b`` broke mid-run with s3fs's "[Errno 22] The specified bucket is not
#: valid" traceback (at the first write, after the input was read); checked where every URI
#: becomes a path, it is one line before any work.
_S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


#: Where each scheme's store is, from the variables its backend reads: the same bucket and
#: key on two endpoints (AWS and a MinIO, two emulators) are two different objects.
_ENDPOINT_VARS = {"s3": ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
                  "gs": ("STORAGE_EMULATOR_HOST",), "gcs": ("STORAGE_EMULATOR_HOST",)}


def store_endpoint(path: Any) -> str:
    """The endpoint the backend would send ``path``'s requests to, as configured in the
    environment ("" for the scheme's default service, or a local path)."""
    text = str(path)
    scheme = text.split("://", 1)[0].lower() if is_uri(text) else ""
    for var in _ENDPOINT_VARS.get(scheme, ()):
        if os.environ.get(var):
            return os.environ[var].rstrip("/")
    return ""


def check_uri(uri: str) -> None:
    """Refuse an ``s3://`` URI whose bucket S3 would reject (a glob in the bucket is left
    to the glob's own "nothing matches"). A bucket alone (``s3://bucket``) is a valid
    folder: inputs under it are read, outputs go to ``s3://bucket/<run>/``."""
    scheme, _, rest = uri.partition("://")
    if scheme.lower() not in ("s3", "s3a"):
        return
    bucket = rest.split("/", 1)[0]
    if any(c in bucket for c in "*?[") or _S3_BUCKET.match(bucket):
        return
    from metamix.base.errors import UserError

    raise UserError(f"{uri}: {bucket!r} is not a valid S3 bucket name (3-63 lowercase "
                    "letters, digits, '.' and '-', starting and ending with a letter or "
                    "digit)")


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


#: Exception classes (by name, anywhere in an error's MRO, from the modules below) that mean
#: the object store did not answer: matched by name so that recognising them needs none of
#: botocore, aiohttp or fsspec installed, and so that they are found in DuckDB's text too.
_UNREACHABLE_CLASSES = frozenset({
    "EndpointConnectionError", "ConnectionClosedError", "ConnectTimeoutError",
    "ReadTimeoutError", "ProxyConnectionError", "HTTPClientError",  # botocore
    "ClientConnectionError", "ClientConnectorError", "ServerDisconnectedError",  # aiohttp
    "FSTimeoutError",  # fsspec
})
_UNREACHABLE_MODULES = ("botocore", "aiobotocore", "aiohttp", "fsspec", "s3fs", "gcsfs")
_ENDPOINT_URL = re.compile(r'endpoint URL: "([^"]+)"')
_VIRTUAL_HOST = re.compile(r"^https?://([^./]+)\.s3[.-][^/]*amazonaws\.com(?::\d+)?/?(.*)$")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and its causes/contexts (a worker's error arrives with its remote traceback
    as its cause), each once; a context hidden by ``raise ... from None`` is skipped, as
    the traceback would skip it."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo += [e.__cause__, None if e.__suppress_context__ else e.__context__]


def _unreachable_text(exc: BaseException) -> str | None:
    """The failing request's description when ``exc`` says the store did not answer:
    a connection error class of the object-store clients, or DuckDB's error carrying one
    (DuckDB reads ``s3://`` through the fsspec filesystem and flattens its errors to
    text)."""
    for cls in type(exc).__mro__:
        if cls.__name__ in _UNREACHABLE_CLASSES and cls.__module__.split(".")[0] in \
                _UNREACHABLE_MODULES:
            return str(exc)
    if type(exc).__module__.split(".")[0] in ("duckdb", "_duckdb"):
        text = str(exc)
        if any(name in text for name in _UNREACHABLE_CLASSES):
            return text
    return None


def _object_url(http_url: str) -> tuple[str, str]:
    """``(s3://bucket/key, endpoint)`` for a request URL, from the configured endpoint
    (path style) or AWS's virtual-host form (the user wrote the former, not the latter);
    the URL twice when neither fits."""
    url, _, query = http_url.partition("?")
    # a listing names its prefix in the query (``?list-type=2&prefix=out/run/scored/``)
    prefix = parse_qs(query).get("prefix", [""])[0]
    if prefix and url.count("/") == 3 and not url.endswith("/"):
        url = f"{url}/{prefix}"
    for var in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        endpoint = os.environ.get(var, "").rstrip("/")
        if endpoint and url.startswith(endpoint + "/"):
            return "s3://" + url[len(endpoint) + 1:], endpoint
    hosted = _VIRTUAL_HOST.match(url)
    if hosted:
        return f"s3://{hosted.group(1)}/{hosted.group(2)}", url.split("/", 3)[2]
    return url, url


def unreachable_store_message(exc: BaseException) -> str | None:
    """One line for an object store that went away mid-command (connection refused, reset
    or timed out after the client's retries), naming the object being read or written and
    its endpoint; None for any other error. Every output reaches the store whole through
    ``atomic_path`` (one object per file, its manifest record after it), so what was
    committed before the outage stays valid and a rerun resumes from it: the line says so."""
    for e in _chain(exc):
        text = _unreachable_text(e)
        if text is None:
            continue
        found = _ENDPOINT_URL.search(text)
        if found is None:  # gcsfs/aiohttp: "Cannot connect to host ..." names the host
            where = ""
            detail = text.strip().splitlines()[-1] if text.strip() else type(e).__name__
        else:
            url, endpoint = _object_url(found.group(1))
            where, detail = f"{url}: ", f"could not connect to {endpoint}"
        return (f"{where}the object store stopped answering ({detail}); outputs "
                "committed before it are whole, so rerunning the same command once it is "
                "back resumes from them")
    return None
