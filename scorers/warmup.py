"""Imported by the local executor's forkserver (``WorkerPool(preload=...)``) before it forks
the score workers: runs each heuristic family once on a two-document batch there, so the
compiled kernels (numba's on-disk cache), word lists and regexes are loaded once in the
server and every forked worker inherits them, instead of each worker loading them again
(~0.5-1 s of CPU per worker, measured by ``bench/score_speed.py``).

Never fails the import: a warm-up that goes wrong only means workers warm up themselves.
"""

from __future__ import annotations

WARMUP_TEXTS = (
    "Hello world. This is a short test, e.g. of the scorers (with parens): ok...\n"
    "A second line; with numbers 1,234.5 and a URL http://example.org/x?y=1 here!",
    "lorem ipsum lorem ipsum lorem ipsum\n\n* a bullet\n* another bullet\nJavaScript {}",
)


def warm() -> bool:
    """True when every heuristic family scored the warm-up batch."""
    try:
        import pyarrow as pa

        from metamix.scorers.registry import HEURISTIC_FAMILIES, load_builtin

        scorers = load_builtin()
        batch = pa.record_batch({"id": ["w0", "w1"], "text": list(WARMUP_TEXTS)})
        for name in HEURISTIC_FAMILIES:
            scorers[name]().score(batch)
    except Exception:  # noqa: BLE001 - only a speed-up; workers warm up on their own
        return False
    return True


WARMED = warm()
