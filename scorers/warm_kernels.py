"""Imported by a scoring run's forkserver, after the run's scorer modules: runs every
registered heuristic family once on a small probe batch, so the numba kernels are loaded
before the workers fork.

A worker that finds them unloaded spends ~0.45 s starting numba's compiler and ~0.3 s
loading some 25 cached kernels before its first batch, every worker of every command
(forking two workers from a warmed process: 2.57 s -> 1.92 s CPU in all, forkserver
included). The forkserver imports its preload list and nothing else, so the warm-up is
this module's import. It must never stop the forkserver: a failure only means the
workers load the kernels themselves, as they did before.
"""

from __future__ import annotations

import warnings

#: Texts that take the families through their kernels and branches: punctuation rules,
#: contractions, non-ASCII letters and spaces, bullets, ellipses, citations, repeated
#: lines, paragraphs and n-grams, a line over C4's 1,000-character word limit, blanks.
PROBE_TEXTS = (
    "It's a test, e.g. of the scorers... Mr. Smith's U.S.A. trip cost $3.50 (20%) - ok?\n"
    "• first item\n- second item…\nSee https://example.org/a-b?x=1 [1] and x-ray 1-2.\n\n"
    "Lorem ipsum dolor sit amet. Enable JavaScript {curly} per our privacy policy.\n\n"
    "the cat sat on the mat the cat sat on the mat the cat sat on the mat\n"
    "the cat sat on the mat the cat sat on the mat the cat sat on the mat\n",
    "Grüße aus Köln — naïve café; «quoted» “curly” ‘single’ 日本語のテキスト。한국어\u00a0"
    "emoji 😀👍🏽 don't won't they're I'll we've\r\nline two\u2028line three",
    "x" * 1200 + " tail words here.",
    "",
    "   \n\n  ",
)


def warm_registered_heuristics() -> list[str]:
    """Score the probe batch with every heuristic family registered in this process (the
    ones whose modules were imported); returns their names."""
    import pyarrow as pa

    from metamix.scorers import _text
    from metamix.scorers.registry import HEURISTIC_FAMILIES, SCORERS

    batch = pa.record_batch([pa.array(PROBE_TEXTS, pa.string())], names=["text"])
    warmed = []
    for name in HEURISTIC_FAMILIES:
        scorer_class = SCORERS.get(name)
        if scorer_class is not None:
            scorer_class().score(batch)
            warmed.append(name)
    _text.forget_cached_view()  # no probe view left behind in every worker
    return warmed


try:
    WARMED: list[str] = warm_registered_heuristics()
except Exception as exc:  # noqa: BLE001 - the forkserver must come up whatever happens
    WARMED = []
    warnings.warn(f"warming the scorer kernels failed ({exc!r}); each worker loads them",
                  RuntimeWarning, stacklevel=1)
