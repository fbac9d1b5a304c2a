"""docs/config-reference.md documents every config key (its table is generated from the
config models) and the README's user-scorer example runs."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pytest

from metamix.config_reference import BEGIN, END, render, rows
from metamix.pipeline.config import ScorerSpec
from metamix.pipeline.scorer_specs import build_scorers
from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")
REFERENCE = (REPO / "docs" / "config-reference.md").read_text(encoding="utf-8")


def test_the_config_reference_is_current() -> None:
    assert render(REFERENCE) == REFERENCE, "run: python -m metamix.config_reference"


def test_every_config_key_is_in_the_reference_with_a_description() -> None:
    block = REFERENCE.split(BEGIN, 1)[1].split(END, 1)[0]
    documented = set(re.findall(r"^\| `([^`]+)` \|", block, re.M))
    keys = [key for key, *_ in rows()]
    for key in ("input.rows_per_shard", "score.max_batch_mb", "select.duckdb_memory_limit",
                "mix.megatron_prefix", "input.keep_fields", "select.where",
                "score.scorers[].import", "input.max_quarantine_fraction"):
        assert key in keys
    assert set(keys) <= documented
    undescribed = [key for key, _, _, what in rows() if not what.strip()]
    assert undescribed == []


def test_the_readme_user_scorer_example_runs(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    code = re.search(r"```python\n(# my_scorers\.py\n.*?)```", README, re.S)
    assert code is not None
    (tmp_path / "readme_scorer_example.py").write_text(code.group(1))
    monkeypatch.chdir(tmp_path)
    spec = ScorerSpec(name="digits", **{"import": "readme_scorer_example"})
    (scorer,) = build_scorers([spec], base_dir=tmp_path)
    batch = pa.record_batch({"text": ["ab 12", "", "no digits"]})
    assert scorer.score(batch)["digits_share"].to_pylist() == [0.5, 0.0, 0.0]
    assert scorer.directions() == {"digits_share": "lower"}
