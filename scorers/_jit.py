"""``jit``: numba's nopython compiler for the byte-scanning kernels, cached on disk.

The heuristics' hottest loops walk every byte of a batch once; as numba kernels they run
several times faster than the equivalent chain of numpy passes. ``cache=True`` writes
the compiled code next to the module (``__pycache__``), so worker processes load it in
milliseconds instead of compiling again.

Without numba the kernels still run, as plain Python (correct, but far slower): that
keeps the scorers importable in environments that lack it.

numba re-compiles a cached kernel when its own file changes, but not when a function it
calls (compiled into it) changes in another module: after an edit to ``_hashing.py`` the
cached tokenizer kept the old hash. So the whole cache is tied to the source of every
scorer module and dropped when any of them changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from metamix.base.atomic import write_bytes_atomic

F = TypeVar("F", bound=Callable[..., Any])

try:
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only without numba
    numba = None
    HAVE_NUMBA = False


_PACKAGE = Path(__file__).resolve().parent


def _drop_stale_kernel_caches(package: Path = _PACKAGE) -> bool:
    """Delete cached kernels compiled from other sources than the current ones; True when
    it did. A read-only install is left alone (numba then caches per user)."""
    digest = hashlib.sha256()
    for path in sorted(package.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    cache_dir = package / "__pycache__"
    stamp = cache_dir / "numba-kernels.sha256"
    try:
        if stamp.read_text() == digest.hexdigest():
            return False
    except OSError:
        pass  # no stamp yet: caches of unknown origin
    try:
        cache_dir.mkdir(exist_ok=True)
        for stale in [*cache_dir.glob("*.nbi"), *cache_dir.glob("*.nbc")]:
            stale.unlink(missing_ok=True)
        write_bytes_atomic(stamp, digest.hexdigest().encode())
    except OSError:
        return False
    return True


if numba is not None:
    _drop_stale_kernel_caches()


def jit(function: F) -> F:
    """Compile ``function`` with numba (nopython, cached, releases the GIL) when available."""
    if numba is None:  # pragma: no cover
        return function
    return numba.njit(cache=True, nogil=True)(function)


def jit_inline(function: F) -> F:
    """``jit`` for small helpers of a kernel: inlined into each caller at compile time, so a
    call passes no arrays (each array passed to a non-inlined call is reference-counted)."""
    if numba is None:  # pragma: no cover
        return function
    return numba.njit(inline="always", cache=True, nogil=True)(function)
