"""bench/mix_suggest_reuse.py on a few RegMix runs: the second and grown-table calls reuse
the first call's fit (skipped when ../shared/benchmarks/regmix is absent)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

BENCH = REPO / "bench"


def _load(name: str):
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_second_and_grown_calls_reuse_the_fit(tmp_path: Path) -> None:
    regmix = _load("regmix_data")
    if not regmix.available():
        pytest.skip(f"RegMix benchmark data not found at {regmix.REGMIX_DIR}")
    bench = _load("mix_suggest_reuse")
    seconds, surrogate = bench.suggest_calls(tmp_path, n_runs=12, grow=2, pool=16)
    assert set(seconds) == {"first", "second", "grown"}  # each checked "reusing the fit"
    assert surrogate.startswith("surrogate: ")
    assert (tmp_path / ".metamix" / "fit-runs.csv.json").is_file()
