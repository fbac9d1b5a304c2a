"""``inputs:``: several sources in one run, each with its own paths, format, field mapping,
domain and kept fields; ``input:`` is the one-source form (issue 29 item 3)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rich.console import Console

from metamix.base.errors import UserError
from metamix.config import load_config
from metamix.pipeline.runner import run_score
from tests.conftest import run_outputs, write_config, write_jsonl

QUIET = Console(quiet=True)
NO_SCORERS = {"scorers": []}


def _sources(tmp_path: Path) -> list[dict]:
    """web: JSONL, nested fields, domain from a field; books: Parquet, other column names,
    one fixed domain; both keep a url, only books a year."""
    write_jsonl(tmp_path / "web.jsonl", [
        {"uid": f"w{i}", "body": f"Web page {i} says a few things about the weather.",
         "meta": {"cat": "news" if i % 2 else "blog", "url": f"https://w.org/{i}"}}
        for i in range(5)] + [{"uid": "w9", "meta": {"cat": "blog"}}])   # no text
    pq.write_table(pa.table({
        "key": [f"b{i}" for i in range(3)],
        "content": [f"Chapter {i}. The ship left the harbour at dawn." for i in range(3)],
        "link": [f"https://b.org/{i}" for i in range(3)],
        "year": pa.array([1900, 1901, 1902], pa.int64())}), tmp_path / "books.parquet")
    return [
        {"paths": [str(tmp_path / "web.jsonl")], "text_field": "body", "id_field": "uid",
         "domain_field": "meta.cat", "keep_fields": {"url": "meta.url"}},
        {"paths": [str(tmp_path / "books.parquet")], "format": "parquet",
         "text_field": "content", "id_field": "key", "domain": "books",
         "keep_fields": {"url": "link", "year": "year"}},
    ]


def _scored(cfg) -> pa.Table:
    return pq.read_table(sorted((cfg.run_dir / "scored").glob("*.parquet")))


def test_two_sources_with_their_own_mappings_in_one_run(tmp_path: Path) -> None:
    cfg = load_config(write_config(tmp_path / "c.yaml", inputs=_sources(tmp_path),
                                   score=NO_SCORERS))
    reports = {r.stage: r.totals for r in run_score(cfg, QUIET)}
    table = _scored(cfg)
    assert table.column("id").to_pylist() == ["w0", "w1", "w2", "w3", "w4", "b0", "b1", "b2"]
    assert table.column("domain").to_pylist() == [
        "blog", "news", "blog", "news", "blog", "books", "books", "books"]
    assert table.column("url").to_pylist() == [
        *(f"https://w.org/{i}" for i in range(5)), *(f"https://b.org/{i}" for i in range(3))]
    assert table.schema.field("year").type == pa.int64()
    assert table.column("year").to_pylist() == [None] * 5 + [1900, 1901, 1902]
    assert table.column("source").to_pylist() == ["web"] * 5 + ["books"] * 3
    assert reports["ingest"].read == 9 and reports["ingest"].quarantined == {"missing_text": 1}
    counts = json.loads((cfg.run_dir / "_manifests" / "sources.json").read_text())["sources"]
    assert counts == {
        "inputs[0]": {"files": [str(tmp_path / "web.jsonl")], "read": 6, "written": 5,
                      "quarantined": {"missing_text": 1}, "scored": 5},
        "inputs[1]": {"files": [str(tmp_path / "books.parquet")], "read": 3, "written": 3,
                      "quarantined": {}, "scored": 3}}
    # a rerun resumes every shard and writes the same bytes
    before = run_outputs(cfg.run_dir)
    reports = run_score(cfg, QUIET)
    assert all(r.skipped == r.shards for r in reports)
    assert run_outputs(cfg.run_dir) == before
    # so does a clean run from scratch
    import shutil

    shutil.rmtree(cfg.run_dir)
    run_score(cfg, QUIET)
    assert run_outputs(cfg.run_dir) == before


def test_input_is_the_one_source_shorthand(tmp_path: Path) -> None:
    source = _sources(tmp_path)[1]
    one = load_config(write_config(tmp_path / "a.yaml", input=source, score=NO_SCORERS))
    many = load_config(write_config(tmp_path / "b.yaml", inputs=[source], score=NO_SCORERS,
                                    run="u"))
    run_score(one, QUIET)
    run_score(many, QUIET)
    assert _scored(one).equals(_scored(many))
    assert one.sources == [one.input] and one.kept_columns() == {"url": "link", "year": "year"}


@pytest.mark.parametrize(("sections", "message"), [
    ({"input": {"paths": ["a"]}, "inputs": [{"paths": ["b"]}]},
     "c.yaml: give exactly one of 'input' (one source) or 'inputs' (a list of sources)"),
    ({}, "c.yaml: give exactly one of 'input'"),
    ({"inputs": [{"paths": ["a"]}, {"paths": ["b"], "text_feild": "x"}]},
     "c.yaml: inputs[1].text_feild: unknown key"),
    ({"inputs": []}, "c.yaml: inputs: List should have at least 1 item"),
    ({"inputs": [{"paths": ["a"], "keep_fields": ["s"], "score_fields": {"s": "higher"}},
                 {"paths": ["b"], "keep_fields": ["s"], "score_fields": {"s": "lower"}}]},
     "inputs[1].score_fields.s: lower here but higher in inputs[0]"),
])
def test_config_mistakes_name_the_source(tmp_path: Path, sections: dict, message: str) -> None:
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("(", r"\(")
                       .replace(")", r"\)").replace(".", r"\.")):
        load_config(write_config(tmp_path / "c.yaml", **sections))


def test_a_mapping_mistake_names_the_source_key(tmp_path: Path) -> None:
    sources = _sources(tmp_path)
    sources[1]["text_field"] = "body"       # the JSONL's name, not the Parquet's
    cfg = load_config(write_config(tmp_path / "c.yaml", inputs=sources, score=NO_SCORERS))
    with pytest.raises(UserError, match=r"books\.parquet: inputs\[1\]\.text_field = 'body' "
                                        r"is not a column \(columns: content, key, link, year"):
        run_score(cfg, QUIET)


def test_an_id_in_two_sources_stops_naming_both_files_and_a_prefix_fixes_it(
        tmp_path: Path) -> None:
    sources = _sources(tmp_path)
    pq.write_table(pq.read_table(tmp_path / "books.parquet").set_column(
        0, "key", pa.array(["b0", "w3", "w4"])), tmp_path / "books.parquet")
    cfg = load_config(write_config(tmp_path / "c.yaml", inputs=sources, score=NO_SCORERS))
    with pytest.raises(UserError) as info:
        run_score(cfg, QUIET)
    assert str(info.value) == (
        f"inputs[0] ({tmp_path / 'web.jsonl'}) and inputs[1] ({tmp_path / 'books.parquet'}) "
        "both have id 'w3' (2 ids in common): ids must be unique across sources; set "
        "inputs[1].id_prefix (e.g. 'src1:') to keep them apart")
    sources[1]["id_prefix"] = "books:"
    cfg = load_config(write_config(tmp_path / "c.yaml", inputs=sources, score=NO_SCORERS))
    run_score(cfg, QUIET)
    assert _scored(cfg).column("id").to_pylist()[5:] == ["books:b0", "books:w3", "books:w4"]
