"""Config validation: unknown keys and bad values fail with the key's path."""

from __future__ import annotations

from pathlib import Path

import pytest

from metamix.base.errors import UserError
from metamix.config import load_config
from metamix.pipeline.config import ScorerSpec
from metamix.pipeline.scorer_specs import build_scorers
from tests.conftest import REPO, write_config

INPUT = {"paths": ["data/*.jsonl"]}


def test_demo_config_is_valid() -> None:
    cfg = load_config(REPO / "configs" / "demo.yaml")
    assert cfg.run == "demo"
    assert [s.name for s in build_scorers(cfg.score.scorers)]


def test_unknown_key_names_its_path(tmp_path: Path) -> None:
    path = write_config(tmp_path / "c.yaml", input={**INPUT, "text_feild": "body"})
    with pytest.raises(UserError) as exc:
        load_config(path)
    assert str(exc.value) == f"{path}: input.text_feild: unknown key"


def test_bad_values_name_their_paths(tmp_path: Path) -> None:
    path = write_config(tmp_path / "c.yaml", input=INPUT, workers=0,
                        tokenizer={"vocab_size": "big"})
    with pytest.raises(UserError) as exc:
        load_config(path)
    lines = str(exc.value).splitlines()
    assert lines[0].startswith(f"{path}: workers: Input should be greater than 0")
    assert lines[1].startswith(f"{path}: tokenizer.vocab_size: Input should be a valid integer")


def test_missing_section_and_bad_regex(tmp_path: Path) -> None:
    path = write_config(tmp_path / "c.yaml")
    with pytest.raises(UserError, match=r"c\.yaml: give exactly one of 'input' \(one source\) "
                                        r"or 'inputs'"):
        load_config(path)
    path = write_config(tmp_path / "d.yaml", input={**INPUT, "domain_from_path": "(no-group)"})
    with pytest.raises(UserError, match=r"input\.domain_from_path: Value error, needs a named"):
        load_config(path)


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: [unclosed\n")
    with pytest.raises(UserError, match=r"bad\.yaml:2: expected ',' or ']'"):
        load_config(bad)
    bad.write_text("- a list\n")
    with pytest.raises(UserError, match="top level must be a mapping"):
        load_config(bad)


def test_overrides_apply_dotted_keys(tmp_path: Path) -> None:
    path = write_config(tmp_path / "c.yaml", input=INPUT)
    cfg = load_config(path, {"workers": 3, "tokenizer.vocab_size": 512})
    assert cfg.workers == 3 and cfg.tokenizer.vocab_size == 512


def test_scorer_params_are_checked_against_the_constructor() -> None:
    with pytest.raises(UserError, match=r"^score\.scorers\.0\.name: unknown scorer 'nope'"):
        build_scorers([ScorerSpec(name="nope")])
    with pytest.raises(UserError, match=r"score\.scorers\.0\.params\.min_doc_wrds: unknown"):
        build_scorers([ScorerSpec(name="gopher_quality", params={"min_doc_wrds": 3})])
    with pytest.raises(UserError, match=r"score\.scorers\.0\.params\.min_doc_words: Input"):
        build_scorers([ScorerSpec(name="gopher_quality", params={"min_doc_words": "many"})])
    (scorer,) = build_scorers([ScorerSpec(name="gopher_quality", params={"min_doc_words": 7})])
    assert scorer.params()["min_doc_words"] == 7
    with pytest.raises(UserError, match="listed twice"):
        build_scorers([ScorerSpec(name="c4"), ScorerSpec(name="c4")])
