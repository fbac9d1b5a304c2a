"""The report page: sections present only with their outputs, every figure a PNG beside
it, same inputs -> same bytes, the CLI, and a real pipeline run reported end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from metamix.base.errors import UserError
from metamix.cli import main
from metamix.report import ReportOptions, build_report
from metamix.report.page import write_pngs
from tests.conftest import PROSE, write_config, write_jsonl
from tests.test_report_fixtures import make_run, write_corpus

QUIET = Console(quiet=True)
FIGURES = {
    "corpus": ["corpus-domains", "corpus-accounting", "corpus-reasons", "corpus-lengths"],
    "scores": ["scores-redpajama", "scores-c4", "scores-prrc-raters", "scores-correlation",
               "scores-drop-reasons"],
    "metarater": ["metarater-oof", "metarater-weights", "metarater-baselines",
                  "metarater-doc-length"],
    "mixture": ["mix-kfold", "mix-oof", "mix-weights", "mix-final", "mix-trace"],
    "selection": ["selection-tokens", "selection-drops", "selection-before-after"],
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """The tiny run's report, PNGs included (shared by the tests that only read it)."""
    root = tmp_path_factory.mktemp("report")
    run = make_run(root)
    result = build_report(run, options=ReportOptions(cache_dir=root / "cache"), console=QUIET)
    return run, result


def test_every_section_and_figure_with_a_png_beside_the_page(report: tuple) -> None:
    run, result = report
    assert result.path == run / "report" / "index.html"
    assert {s.id: [f.id for f in s.figures] for s in result.sections} == FIGURES
    assert result.missing == []
    for fid in (f for ids in FIGURES.values() for f in ids):
        png = run / "report" / f"{fid}.png"
        assert png.read_bytes()[:8] == PNG_MAGIC, fid
        assert f'href="{fid}.png"' in result.path.read_text(encoding="utf-8")
    assert result.size_bytes == result.path.stat().st_size < 3_000_000


def test_page_is_self_contained_and_escapes_document_text(report: tuple) -> None:
    run, result = report
    html = result.path.read_text(encoding="utf-8")
    assert "<script src" not in html and "<link" not in html  # nothing loaded from outside
    assert "vegaEmbed" in html
    # document excerpts and quarantine details are text, never markup
    assert "d8 &lt;b&gt;text&lt;/b&gt;" in html and "<b>text</b>" not in html
    assert "{bad &lt;/script&gt; json" in html
    specs = html.split('<script type="application/json" id="figure-specs">')[1]
    specs = json.loads(specs.split("</script>")[0].replace("<\\/", "</"))
    assert [s["id"] for s in specs] == [f for ids in FIGURES.values() for f in ids]
    assert all(s["spec"]["datasets"] for s in specs)  # data inline in every figure
    tables = ["Rows per stage", "PRRC readability: top and bottom documents", "Kept per domain",
              "Headline numbers", "Chosen mixture", "Quarantined rows"]
    assert all(t in html for t in tables)


def test_same_outputs_give_the_same_bytes(report: tuple, tmp_path: Path) -> None:
    run, result = report
    first = result.path.read_bytes()
    again = build_report(run, options=ReportOptions(png=False, cache_dir=tmp_path),
                         out_dir=tmp_path / "again", console=QUIET)
    assert again.path.read_bytes() == first  # a fresh JavaScript bundle included
    figures = [f for s in again.sections for f in s.figures if f.id in ("mix-trace",
                                                                         "scores-c4")]
    write_pngs(figures, tmp_path / "png", 2.0)
    for f in figures:
        assert (tmp_path / "png" / f"{f.id}.png").read_bytes() == (
            run / "report" / f"{f.id}.png").read_bytes()


def test_sections_and_figures_are_skipped_with_a_note_when_outputs_are_missing(
        tmp_path: Path) -> None:
    run = tmp_path / "out" / "t"
    write_corpus(run)
    (run / "report").mkdir()
    (run / "report" / "stale-figure.png").write_bytes(PNG_MAGIC)
    result = build_report(run, options=ReportOptions(cache_dir=tmp_path), console=QUIET)
    assert [s.id for s in result.sections] == ["corpus", "scores"]
    assert result.missing == ["Meta-rater", "mixture", "selection"]
    assert not (run / "report" / "stale-figure.png").exists()
    # selection did not run, so only ingest quarantined: the reasons figure stays
    corpus = result.sections[0]
    assert [f.id for f in corpus.figures] == ["corpus-domains", "corpus-accounting",
                                              "corpus-reasons", "corpus-lengths"]

    full = make_run(tmp_path / "second")
    (full / "mix" / "runs.parquet").unlink()
    result = build_report(full, options=ReportOptions(png=False, cache_dir=tmp_path),
                          console=QUIET)
    mix = next(s for s in result.sections if s.id == "mixture")
    assert [f.id for f in mix.figures] == ["mix-kfold", "mix-weights", "mix-final"]
    assert any("Search trace" in n for n in mix.notes)
    assert any("Surrogate scatter" in n for n in mix.notes)


def test_no_outputs_is_a_user_error_naming_the_run(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no run outputs"):
        build_report(tmp_path / "nope", console=QUIET)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no pipeline outputs"):
        build_report(tmp_path / "empty", console=QUIET)


def test_an_unreadable_shard_is_a_user_error_naming_it(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    (run / "scored" / "part-00001.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(UserError, match="part-00001.parquet"):
        build_report(run, options=ReportOptions(png=False, cache_dir=tmp_path), console=QUIET)


def test_cli_prints_the_page_path_last_and_reports_bad_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    run = make_run(tmp_path)
    cfg = write_config(tmp_path / "c.yaml", run="t", out_dir=str(tmp_path / "out"),
                       input={"paths": ["x"]}, mix={"folds": 5})
    assert main(["report", "--config", str(cfg), "--no-png"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == str(run / "report" / "index.html")
    assert not list((run / "report").glob("*.png"))
    (run / "metarater" / "summary.json").write_text("{not json")
    assert main(["report", "--config", str(cfg), "--no-png"]) == 2
    err = capsys.readouterr().err
    assert "summary.json" in err and "cannot read JSON" in err
    assert main(["report", "--config", str(cfg), "--sample-rows", "0"]) == 2


def test_a_real_score_and_select_run_is_reported(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Formats as the pipeline writes them (manifests, quarantine, selection summary)."""
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    rows = [{"id": f"{d}-{i}", "text": f"{PROSE} Item {i}.\n" * (1 + i % 4)
             + ("Lorem ipsum dolor sit amet." if i % 5 == 0 else ""), "domain": d}
            for d in ("web", "books") for i in range(40)]
    write_jsonl(data / "corpus.jsonl", [*rows, b"{broken"])
    cfg = write_config(tmp_path / "c.yaml", run="r", input={"paths": [str(data / "*.jsonl")]},
                       score={"scorers": [{"name": "redpajama"}, {"name": "c4"}]},
                       # the rows repeat one paragraph: near duplicates all (tests/test_dedup)
                       dedup={"exact": False, "near": False},
                       select={"weights": {"rps_doc_frac_unique_words": 1.0},
                               "fraction": 0.5})
    assert main(["score", "--config", str(cfg)]) == 0
    assert main(["select", "--config", str(cfg)]) == 0
    run = tmp_path / "out" / "r"
    result = build_report(run, options=ReportOptions(png=False, cache_dir=tmp_path),
                          console=QUIET)
    assert [s.id for s in result.sections] == ["corpus", "scores", "selection"]
    ids = [f.id for f in result.figures]
    assert {"corpus-accounting", "corpus-reasons", "scores-redpajama", "scores-c4",
            "scores-drop-reasons", "selection-tokens", "selection-before-after"} <= set(ids)
    acc = next(i for i in result.sections[0].items if i.id == "corpus-accounting-table").frame
    assert acc.set_index("stage").loc["ingest", ["read", "quarantined"]].tolist() == [81, 1]
    assert acc.set_index("stage").loc["select", ["read", "written"]].tolist() == [80, 40]
    assert acc["adds_up"].all()
    drops = next(s for s in result.sections if s.id == "scores")
    assert "c4" in json.dumps(next(f for f in drops.figures if f.id == "scores-drop-reasons").spec)
