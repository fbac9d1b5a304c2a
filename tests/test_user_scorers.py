"""`score.scorers: [{name, import}]`: a Scorer subclass of the user's own, loaded from an
import path, with one clear error for each way the path can be wrong."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from rich.console import Console

from metamix.base.errors import UserError
from metamix.config import load_config
from metamix.pipeline.config import ScorerSpec
from metamix.pipeline.runner import run_score
from metamix.pipeline.scorer_specs import build_scorers
from tests.conftest import write_config, write_jsonl

USER_MODULE = '''
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from metamix.scorers.base import Scorer


class ShoutScorer(Scorer):
    """Share of upper-case letters: higher is louder, and here, worse."""

    name = "shout"
    column_directions = {"shout_upper_frac": "lower"}

    def __init__(self, min_letters: int = 1) -> None:
        self.min_letters = min_letters

    def output_schema(self) -> pa.Schema:
        return pa.schema([("shout_upper_frac", pa.float64())])

    def score(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        texts = batch.column("text").to_pylist()
        out = []
        for t in texts:
            letters = [c for c in t if c.isalpha()]
            upper = sum(c.isupper() for c in letters)
            out.append(upper / len(letters) if len(letters) >= self.min_letters else 0.0)
        return {"shout_upper_frac": pa.array(out, pa.float64())}


class NotAScorer:
    name = "plain"


class Half(Scorer):
    name = "half"
'''


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A module file in the folder metamix runs from, named per test (imports are cached)."""
    name = f"user_scorers_{uuid.uuid4().hex[:12]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(USER_MODULE))
    monkeypatch.chdir(tmp_path)
    return name


def test_a_user_scorer_scores_like_a_builtin(tmp_path: Path, user_module: str) -> None:
    write_jsonl(tmp_path / "a.jsonl", [
        {"id": "1", "text": "quiet words here", "domain": "web"},
        {"id": "2", "text": "LOUD WORDS", "domain": "web"},
        {"id": "3", "text": "Half LOUD", "domain": "web"}])
    cfg = load_config(write_config(tmp_path / "c.yaml", input={"paths": ["a.jsonl"]}, score={
        "scorers": [{"name": "shout", "import": user_module, "params": {"min_letters": 2}},
                    {"name": "c4"}]}))
    run_score(cfg, Console(quiet=True))
    table = pq.read_table(sorted((cfg.run_dir / "scored").glob("*.parquet")))
    assert table.column("shout_upper_frac").to_pylist() == [0.0, 1.0, 5 / 8]
    assert "c4_drop_reason" in table.column_names
    (scorer, _) = build_scorers(cfg.score.scorers, base_dir=tmp_path)
    assert scorer.directions() == {"shout_upper_frac": "lower"}


def test_module_colon_class_form(user_module: str, tmp_path: Path) -> None:
    spec = ScorerSpec(name="shout", **{"import": f"{user_module}:ShoutScorer"})
    (scorer,) = build_scorers([spec], base_dir=tmp_path)
    assert type(scorer).__name__ == "ShoutScorer"


@pytest.mark.parametrize("name, path, message", [
    ("shout", "no_such_module_xyz", "score.scorers.0.import: no module 'no_such_module_xyz'"),
    ("shout", "{m}:Missing", "score.scorers.0.import: module '{m}' has no class 'Missing'"),
    ("plain", "{m}:NotAScorer", "score.scorers.0.import: {m}:NotAScorer is not a subclass of "
                                "metamix.scorers.base.Scorer"),
    ("half", "{m}:Half", "score.scorers.0.import: {m}:Half does not implement "
                         "output_schema, score"),
    ("loud", "{m}", "score.scorers.0.import: module '{m}' has no Scorer subclass with name "
                    "'loud' (Scorer subclasses there: Half (name 'half'), ShoutScorer (name "
                    "'shout'))"),
    ("loud", "{m}:ShoutScorer", "class ShoutScorer has name 'shout', the config says 'loud'"),
])
def test_bad_import_paths_are_one_clear_error(user_module: str, tmp_path: Path, name: str,
                                              path: str, message: str) -> None:
    spec = ScorerSpec(name=name, **{"import": path.format(m=user_module)})
    with pytest.raises(UserError) as err:
        build_scorers([spec], base_dir=tmp_path)
    assert message.format(m=user_module) in str(err.value)


def test_a_module_that_fails_to_import_names_the_error(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "broken_user_scorer.py").write_text("raise RuntimeError('boom')\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=r"importing 'broken_user_scorer' failed: "
                                        r"RuntimeError: boom"):
        build_scorers([ScorerSpec(name="x", **{"import": "broken_user_scorer"})],
                      base_dir=tmp_path)


def test_params_of_a_user_scorer_are_checked(user_module: str, tmp_path: Path) -> None:
    spec = ScorerSpec(name="shout", params={"min_leters": 2}, **{"import": user_module})
    with pytest.raises(UserError, match=r"score\.scorers\.0\.params\.min_leters: unknown"):
        build_scorers([spec], base_dir=tmp_path)
