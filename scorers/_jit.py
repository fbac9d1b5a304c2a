"""``jit``: numba's nopython compiler for the byte-scanning kernels, cached on disk.

The heuristics' hottest loops walk every byte of a batch once; as numba kernels they run
several times faster than the equivalent chain of numpy passes. ``cache=True`` writes
the compiled code next to the module (``__pycache__``), so worker processes load it in
milliseconds instead of compiling again.

Without numba the kernels still run, as plain Python (correct, but far slower): that
keeps the scorers importable in environments that lack it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

try:
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only without numba
    numba = None
    HAVE_NUMBA = False


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
