"""`metamix inspect` on a hand-built run: 20 scored rows, expected groups worked out by hand."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from metamix.cli import main
from metamix.config import load_config
from metamix.pipeline.selection import run_selection
from metamix.pipeline.selection.inspect import excerpt, inspect_selection
from tests.conftest import write_config

#: ids 0-3 fail gopher_repetition; q = i, so decile k (1..10) holds q = 2k-2 and 2k-1.
REPETITION = {0: "top_2gram", 1: "top_2gram", 2: "dup_line_frac", 3: "top_2gram"}


@pytest.fixture
def run_config(tmp_path: Path) -> Path:
    """A finished selection: hard filter, then the best half of the survivors by q."""
    config = write_config(
        tmp_path / "run.yaml", seed=7, input={"paths": ["unused/*.jsonl"]},
        select={"weights": {"q": 1.0}, "hard_filters": ["gopher_repetition"],
                "fraction": 0.5})
    cfg = load_config(config)
    scored = cfg.run_dir / "scored"
    scored.mkdir(parents=True)
    n = 20
    table = pa.table({
        "id": [f"d{i:02d}" for i in range(n)],
        "domain": ["web" if i % 2 else "code" for i in range(n)],
        "source": ["unit"] * n,
        "text": [f"doc {i}\n\n   with   spaced\ttext " + "x" * 400 * (i == 5)
                 for i in range(n)],
        "n_tokens": pa.array([10 + i for i in range(n)], pa.int64()),
        "q": [float(i) for i in range(n)],
        "label": ["a"] * n,
        "gopher_repetition_drop_reason": [REPETITION.get(i) for i in range(n)],
    })
    pq.write_table(table, scored / "part-00000.parquet")
    assert cfg.select is not None
    run_selection(cfg.select, [scored / "part-00000.parquet"], cfg.run_dir, progress=False)
    return config


def _ids(groups: list) -> list[list[str]]:
    return [[s.id for s in g.samples] for g in groups]


def test_reasons_are_the_runs_outcomes_and_samples_have_them(run_config: Path) -> None:
    cfg = load_config(run_config)
    groups, warnings = inspect_selection(cfg, n=2)
    assert warnings == []
    # 16 survivors, the best 8 (q 12..19) kept, q 4..11 not selected
    assert [(g.label, g.size) for g in groups] == [
        ("kept", 8), ("gopher_repetition:dup_line_frac", 1),
        ("gopher_repetition:top_2gram", 3), ("not_selected", 8)]
    for group in groups:
        assert len(group.samples) == min(2, group.size)
        assert all(s.outcome == group.label for s in group.samples)
    kept = {s.id for s in groups[0].samples}
    assert all(int(i[1:]) >= 12 for i in kept)
    groups, _ = inspect_selection(cfg, reasons=("gopher_repetition",), n=5)
    assert {s.id for g in groups for s in g.samples} == {"d00", "d01", "d02", "d03"}
    groups, _ = inspect_selection(cfg, kept=False, n=50)
    assert sum(len(g.samples) for g in groups) == 12
    assert all(s.outcome != "kept" for g in groups for s in g.samples)


def test_same_seed_same_samples_other_seed_others(run_config: Path) -> None:
    cfg = load_config(run_config)
    first = _ids(inspect_selection(cfg, n=3)[0])
    assert first == _ids(inspect_selection(cfg, n=3, seed=7)[0])  # the run's seed
    assert first == _ids(inspect_selection(cfg, n=3)[0])
    others = [_ids(inspect_selection(cfg, n=3, seed=s)[0]) for s in range(1, 6)]
    assert any(o != first for o in others)


def test_deciles_hold_their_score_range(run_config: Path) -> None:
    cfg = load_config(run_config)
    groups, _ = inspect_selection(cfg, score="q", n=5)
    assert len(groups) == 10
    for k, group in enumerate(groups, start=1):
        lo, hi = 2 * k - 2, 2 * k - 1   # by hand: ntile over q = 0..19
        assert group.label == f"q decile {k}/10 [{lo}, {hi}]" and group.size == 2
        assert sorted(s.score for s in group.samples) == [lo, hi]
    groups, _ = inspect_selection(cfg, score="q", by_domain=True, kept=True, n=5)
    for group in groups:
        domain = group.label.split(" · ")[0].removeprefix("domain ")
        assert all(s.domain == domain and s.outcome == "kept" for s in group.samples)
        assert all(s.score is not None and s.score >= 12 for s in group.samples)


def test_excerpt_collapses_whitespace_and_cuts(run_config: Path) -> None:
    assert excerpt("a\n\n  b\tc ") == "a b c"
    long = excerpt("word " * 100)
    assert len(long) <= 301 and long.endswith("…")
    groups, _ = inspect_selection(load_config(run_config), domain="web", n=20)
    [group] = groups
    assert group.label == "domain web" and group.size == 10
    texts = {s.id: s.excerpt for s in group.samples}
    assert texts["d01"] == "doc 1 with spaced text"
    assert texts["d05"].endswith("…") and len(texts["d05"]) == 301


def test_cli_prints_excerpts(run_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "-c", str(run_config), "--reason", "not_selected", "--n", "2"]) == 0
    out = capsys.readouterr().out
    assert "not_selected · 8 docs" in out and out.count("· unit ·") == 2
    assert "kept" not in out.split("docs", 1)[1]


@pytest.mark.parametrize(("args", "message"), [
    (["--score", "qq"], "--score qq: no such column in the scored input; did you mean 'q'?"),
    (["--score", "label"], "--score label: not numeric"),
    (["--reason", "c4"], "--reason c4: no document has it; reasons in this run: "
     "gopher_repetition:dup_line_frac, gopher_repetition:top_2gram, kept, not_selected"),
    (["--domain", "math"], "--domain math: no such domain; domains: code, web"),
])
def test_user_errors_are_one_line(run_config: Path, capsys: pytest.CaptureFixture[str],
                                  args: list[str], message: str) -> None:
    assert main(["inspect", "-c", str(run_config), *args]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"error: {message}"


def test_no_run_yet_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path / "new.yaml", input={"paths": ["x/*.jsonl"]},
                          select={"weights": {"q": 1.0}})
    assert main(["inspect", "-c", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no finished selection in ") and "metamix select" in err
    assert "\n" not in err


def test_a_changed_select_section_is_warned(run_config: Path) -> None:
    cfg = load_config(run_config, {"select.fraction": 0.25})
    groups, warnings = inspect_selection(cfg)
    assert len(warnings) == 1 and "rerun it" in warnings[0]
    assert groups[0].label == "kept" and groups[0].size == 4
