"""Cached numba kernels are dropped when any scorer source changes (numba alone only
notices changes to a kernel's own file, not to the functions compiled into it)."""

from __future__ import annotations

from pathlib import Path

from metamix.scorers._jit import _drop_stale_kernel_caches


def _cached(package: Path) -> list[str]:
    return sorted(p.name for p in (package / "__pycache__").iterdir() if p.suffix != ".sha256")


def test_kernel_caches_follow_every_source_file(tmp_path: Path) -> None:
    package = tmp_path / "scorers"
    (package / "__pycache__").mkdir(parents=True)
    (package / "_hashing.py").write_text("K = 1\n")
    (package / "_tokens.py").write_text("from metamix.scorers._hashing import K\n")
    names = ("_tokens.scan-1.py311.nbi", "_tokens.scan-1.py311.1.nbc", "_tokens.cpython-311.pyc")
    for name in names:
        (package / "__pycache__" / name).write_bytes(b"old")

    assert _drop_stale_kernel_caches(package)  # no stamp: origin unknown, dropped
    assert _cached(package) == ["_tokens.cpython-311.pyc"]  # bytecode is Python's business

    (package / "__pycache__" / "_tokens.scan-1.py311.nbi").write_bytes(b"new")
    assert not _drop_stale_kernel_caches(package)  # same sources: kept
    assert "_tokens.scan-1.py311.nbi" in _cached(package)

    (package / "_hashing.py").write_text("K = 2\n")  # a dependency, not the kernel's file
    assert _drop_stale_kernel_caches(package)
    assert _cached(package) == ["_tokens.cpython-311.pyc"]
