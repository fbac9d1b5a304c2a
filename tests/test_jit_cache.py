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


# Builds every heuristic family and scores two documents; prints whether numba was loaded
# after building them, and the scores (a nested kernel call is among them: the word
# tokenizer's scan inlines helpers and calls the hashing kernel).
_SCORE_SCRIPT = """
import json, sys
{before}
import pyarrow as pa
from metamix.scorers.registry import HEURISTIC_FAMILIES, SCORERS, load_builtin
load_builtin()
scorers = [SCORERS[name]() for name in HEURISTIC_FAMILIES]
loaded = "numba" in sys.modules
texts = ["Hello world! It's e.g. the end... Call 555-1234 now.\\nok ok ok ok ok ok",
         "Grüße aus Köln — naïve café; x-ray, don't stop. lorem ipsum {{x}}"]
batch = pa.record_batch([pa.array(texts, pa.string())], names=["text"])
out = {{}}
for scorer in scorers:
    out.update({{k: v.to_pylist() for k, v in scorer.score(batch).items()}})
print(json.dumps([loaded, "numba" in sys.modules, out], sort_keys=True))
"""


def _score_in_fresh_process(before: str) -> list:
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _SCORE_SCRIPT.format(before=before)],
                         capture_output=True, text=True, check=False,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


def test_building_scorers_does_not_import_numba_and_lazy_kernels_score_the_same() -> None:
    """A command's main process builds the scorers but runs no kernel: numba (~0.3 s CPU,
    scipy with it) is imported at the first kernel call, and the kernels then give the
    same values as in a process that imported numba first (the pool workers)."""
    lazy = _score_in_fresh_process("")
    eager = _score_in_fresh_process("import numba")
    assert lazy[:2] == [False, True]
    assert eager[:2] == [True, True]
    assert lazy[2] == eager[2]
    # hello world its eg the end call 5551234 now + six "ok"; the em dash is a word of its
    # own (RedPajama strips ASCII punctuation only): grüße aus köln — naïve café xray dont
    # stop lorem ipsum x
    assert lazy[2]["rps_doc_word_count"] == [15, 12]
