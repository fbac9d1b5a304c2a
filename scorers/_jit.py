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

numba costs ~0.3 s of CPU to import (it pulls in scipy), and a command's main process only
builds the scorers; the workers run them. So a kernel module imported while numba is not
loaded yet gets ``LazyKernel`` stand-ins: the first call of any of them imports numba,
compiles nothing yet (numba compiles on each kernel's first call, as always), and swaps
every stand-in for its numba dispatcher in the ``metamix`` modules' namespaces, so a kernel
that calls another one finds a real dispatcher when numba compiles it. A process that
loaded numba first (the pool workers: their forkserver preloads it) gets the dispatchers
directly.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from metamix.base.atomic import write_bytes_atomic

F = TypeVar("F", bound=Callable[..., Any])

HAVE_NUMBA = importlib.util.find_spec("numba") is not None

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
        write_bytes_atomic(stamp, digest.hexdigest().encode(), confined=False)
    except OSError:
        return False
    return True


class LazyKernel:
    """Stands in for a numba kernel until the first kernel call of the process."""

    def __init__(self, function: Callable[..., Any], options: dict[str, Any]) -> None:
        functools.update_wrapper(self, function)
        self.function = function
        self.options = options
        self.dispatcher: Any = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.dispatcher is None:
            _load_numba()
        return self.dispatcher(*args, **kwargs)


_LAZY: list[LazyKernel] = []
_LOCK = threading.Lock()
_numba: Any = None


def _load_numba() -> Any:
    """Import numba once, drop stale caches, and turn every stand-in into its dispatcher."""
    global _numba
    with _LOCK:
        if _numba is None:
            import numba

            _drop_stale_kernel_caches()
            _numba = numba
        for kernel in _LAZY:
            if kernel.dispatcher is None:
                kernel.dispatcher = _numba.njit(**kernel.options)(kernel.function)
        dispatchers = {id(k): k.dispatcher for k in _LAZY}
        _LAZY.clear()
        if dispatchers:
            for name, module in list(sys.modules.items()):
                if name.startswith("metamix.") and module is not None:
                    namespace = vars(module)
                    for attr, value in list(namespace.items()):
                        if isinstance(value, LazyKernel) and id(value) in dispatchers:
                            namespace[attr] = dispatchers[id(value)]
    return _numba


def _compiled(function: F, options: dict[str, Any]) -> F:
    if not HAVE_NUMBA:  # pragma: no cover - plain Python, correct but slow
        return function
    if _numba is None and "numba" in sys.modules:
        _load_numba()
    if _numba is not None:
        return _numba.njit(**options)(function)
    kernel = LazyKernel(function, options)
    _LAZY.append(kernel)
    return kernel  # type: ignore[return-value]


def jit(function: F) -> F:
    """Compile ``function`` with numba (nopython, cached, releases the GIL) when available."""
    return _compiled(function, {"cache": True, "nogil": True})


def jit_inline(function: F) -> F:
    """``jit`` for small helpers of a kernel: inlined into each caller at compile time, so a
    call passes no arrays (each array passed to a non-inlined call is reference-counted)."""
    return _compiled(function, {"inline": "always", "cache": True, "nogil": True})
