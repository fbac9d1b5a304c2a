"""`metamix run --until STEP` runs what a step needs and skips finished steps; the CLI's
conventions (--version, per-command examples, `metamix scorers`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from metamix import __version__
from metamix.cli import build_parser, main
from metamix.cli.chain import is_complete, mark_complete, plan
from metamix.config import load_config
from tests.conftest import write_config


def _config(tmp_path: Path, select: dict | None) -> Path:
    sections = {"run": "r", "out_dir": str(tmp_path / "out"), "input": {"paths": ["x"]}}
    if select is not None:
        sections["select"] = select
    return write_config(tmp_path / "c.yaml", **sections)


LEARNED = {"weights_file": "out/r/metarater/weights.json", "mode": "token_budget",
           "mixture_file": "out/r/mixture/weights.json"}


def test_plan_adds_the_steps_whose_outputs_select_reads(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config(_config(tmp_path, LEARNED))
    assert plan(cfg, "select") == ["score", "metarater", "mix", "select"]
    assert plan(cfg, "mix") == ["score", "mix"]
    assert plan(cfg, "metarater") == ["score", "metarater"]
    assert plan(cfg, "score") == ["score"]
    by_hand = load_config(_config(tmp_path, {"weights": {"s": 1.0}}))
    assert plan(by_hand, "select") == ["score", "select"]
    # a weights file from elsewhere is the user's: no metarater step
    other = load_config(_config(tmp_path, {"weights_file": "mine/weights.json"}))
    assert plan(other, "select") == ["score", "select"]


def test_a_finished_step_is_skipped_until_its_config_inputs_or_outputs_change(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config(_config(tmp_path, None))
    run = cfg.run_dir
    for rel in ("_manifests/scored.json", "_manifests/validation.json", "tokenizer.json",
                "metarater/weights.json", "metarater/summary.json"):
        (run / rel).parent.mkdir(parents=True, exist_ok=True)
        (run / rel).write_text(rel)
    assert not is_complete(cfg, "metarater")
    mark_complete(cfg, "metarater")
    assert is_complete(cfg, "metarater")
    assert not is_complete(cfg, "mix")  # each step has its own stamp

    changed = load_config(_config(tmp_path, None), {"metarater.k": 16})
    assert not is_complete(changed, "metarater")
    (run / "_manifests/scored.json").write_text("rescored")
    assert not is_complete(cfg, "metarater")
    mark_complete(cfg, "metarater")
    assert is_complete(cfg, "metarater")
    (run / "metarater/weights.json").write_text("edited by hand")
    assert not is_complete(cfg, "metarater")
    mark_complete(cfg, "metarater")
    (run / "metarater/summary.json").unlink()
    assert not is_complete(cfg, "metarater")


def test_a_new_dedup_pass_reruns_select(tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config(_config(tmp_path, {"weights": {"s": 1.0}}))
    for rel in ("_manifests/scored.json", "selection_summary.json"):
        (cfg.run_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (cfg.run_dir / rel).write_text(rel)
    mark_complete(cfg, "select")
    assert is_complete(cfg, "select")
    (cfg.run_dir / "_manifests/dups.json").write_text("duplicates found")
    assert not is_complete(cfg, "select")       # select must drop them: it runs again
    mark_complete(cfg, "select")
    (cfg.run_dir / "_manifests/dups.json").write_text("other duplicates")
    assert not is_complete(cfg, "select")


def test_mix_reruns_when_what_select_may_ship_changes(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """mix plans on the documents select may ship: select's hard_filters, where,
    drop_duplicates and the dedup pass are its inputs; select's weights are not."""
    monkeypatch.chdir(tmp_path)
    cfg = load_config(_config(tmp_path, LEARNED))
    for rel in ("_manifests/scored.json", "_manifests/validation.json", "tokenizer.json",
                "mixture/weights.json"):
        (cfg.run_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (cfg.run_dir / rel).write_text(rel)
    mark_complete(cfg, "mix")
    assert is_complete(cfg, "mix")
    assert is_complete(load_config(_config(tmp_path, {**LEARNED, "length_neutral": False})),
                       "mix")
    for change in ({"hard_filters": ["c4"]}, {"where": "lang = 'en'"},
                   {"drop_duplicates": False}):
        assert not is_complete(load_config(_config(tmp_path, {**LEARNED, **change})), "mix")
    (cfg.run_dir / "_manifests/dups.json").write_text("duplicates found")
    assert not is_complete(cfg, "mix")


def test_version_and_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"metamix {__version__}"
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.choices and "score" in a.choices)
    helps = {name: p.format_help() for name, p in subparsers.choices.items()}
    mix = subparsers.choices["mix"]
    mix_sub = next(a for a in mix._actions if a.choices and "fit" in a.choices)
    helps.update({f"mix {n}": p.format_help() for n, p in mix_sub.choices.items()})
    assert {"score", "select", "run", "metarater", "scorers", "mix run", "mix fit"} <= set(helps)
    for name, text in helps.items():
        if name != "mix":
            assert "example:\n  metamix" in text or "example:\n  OPENAI" in text, name


def test_scorers_lists_columns_types_and_parameters() -> None:
    proc = subprocess.run([sys.executable, "-m", "metamix", "scorers"], capture_output=True,
                          text=True, check=True, env={"COLUMNS": "200", "PATH": "/usr/bin"},
                          cwd=Path(__file__).parent.parent)
    out = proc.stdout
    for expected in ("redpajama", "rps_doc_word_count", "gopher_repetition", "c4_drop_reason",
                     "min_doc_words = 50", "prrc", "dclm_fasttext_hq_prob", "langid"):
        assert expected in out, expected
