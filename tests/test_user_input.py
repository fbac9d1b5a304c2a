"""A user's own data in: dotted field paths, mapping mistakes caught before any work,
stages that quarantine too much, and `save_to_disk` folders found by `format: auto`."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rich.console import Console

from metamix.base.errors import UserError
from metamix.cli import main
from metamix.config import load_config
from metamix.pipeline.fields import CHECK_RECORDS
from metamix.pipeline.runner import run_score
from tests.conftest import write_config, write_jsonl

QUIET = Console(quiet=True)
NO_SCORERS = {"scorers": []}


def _nested(n: int, lang: str = "en") -> list[dict]:
    return [{"uid": f"{lang}{i}", "body": f"Document {i} in {lang}. It has a few words.",
             "meta": {"lang": lang, "url": f"https://x.org/{lang}/{i}", "origin": "crawl"}}
            for i in range(n)]


def _score(tmp_path: Path, **input_keys):
    cfg = load_config(write_config(tmp_path / "c.yaml", input=input_keys, score=NO_SCORERS))
    reports = {r.stage: r.totals for r in run_score(cfg, QUIET)}
    return cfg, reports


def _scored(cfg) -> pa.Table:
    return pq.read_table(sorted((cfg.run_dir / "scored").glob("*.parquet")))


NESTED_MAPPING = {"text_field": "body", "id_field": "uid", "domain_field": "meta.lang",
                  "source_field": "meta.origin"}


def test_dotted_paths_in_jsonl(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", _nested(3, "en") + _nested(2, "de"))
    cfg, totals = _score(tmp_path, paths=[str(tmp_path / "a.jsonl")], **NESTED_MAPPING)
    table = _scored(cfg)
    assert table.column("id").to_pylist() == ["en0", "en1", "en2", "de0", "de1"]
    assert table.column("domain").to_pylist() == ["en"] * 3 + ["de"] * 2
    assert set(table.column("source").to_pylist()) == {"crawl"}
    assert totals["ingest"].quarantined == {}


def test_dotted_paths_in_parquet_structs_and_saved_datasets(tmp_path: Path) -> None:
    import datasets

    rows = _nested(3, "fr")
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "p.parquet")
    datasets.Dataset.from_list(_nested(2, "es")).save_to_disk(str(tmp_path / "saved"))
    cfg, _ = _score(tmp_path, paths=[str(tmp_path / "p.parquet"), str(tmp_path / "saved")],
                    **NESTED_MAPPING)
    table = _scored(cfg)
    assert sorted(table.column("id").to_pylist()) == ["es0", "es1", "fr0", "fr1", "fr2"]
    domain_of = dict(zip(table.column("id").to_pylist(), table.column("domain").to_pylist(),
                         strict=True))
    assert domain_of["fr0"] == "fr" and domain_of["es1"] == "es"


def test_a_literal_dotted_key_wins_over_the_nested_path(tmp_path: Path) -> None:
    rows = [{"id": "1", "text": "one two three", "meta.lang": "literal",
             "meta": {"lang": "nested"}}]
    write_jsonl(tmp_path / "a.jsonl", rows)
    cfg, _ = _score(tmp_path, paths=[str(tmp_path / "a.jsonl")], domain_field="meta.lang")
    assert _scored(cfg).column("domain").to_pylist() == ["literal"]


def test_domain_field_missing_from_jsonl_stops_naming_file_key_and_keys(tmp_path: Path) -> None:
    """Was: every row quarantined as missing_domain, 0 rows scored, exit 0."""
    write_jsonl(tmp_path / "a.jsonl", [{**r, "meta": {"language": "en"}} for r in _nested(4)])
    with pytest.raises(UserError) as err:
        _score(tmp_path, paths=[str(tmp_path / "a.jsonl")], text_field="body", id_field="uid",
               domain_field="meta.lang")
    message = str(err.value)
    assert "a.jsonl: input.domain_field = 'meta.lang' is in no record of the first 4" in message
    assert "keys there: body, meta, meta.language, uid" in message
    assert not (tmp_path / "out" / "t" / "ingest").exists()   # stopped before any work


def test_id_field_missing_from_jsonl_stops_with_a_hint(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", _nested(2))
    with pytest.raises(UserError, match=r"a\.jsonl: input\.id_field = 'id' is in no record.*"
                                        r"set input\.id_field: null"):
        _score(tmp_path, paths=[str(tmp_path / "a.jsonl")], text_field="body",
               domain_field="meta.lang")


def test_source_field_set_but_absent_stops_and_at_its_default_falls_back(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", _nested(2))
    with pytest.raises(UserError, match=r"input\.source_field = 'meta\.site' is in no record"):
        _score(tmp_path, paths=[str(tmp_path / "a.jsonl")], text_field="body", id_field="uid",
               domain_field="meta.lang", source_field="meta.site")
    cfg, _ = _score(tmp_path, paths=[str(tmp_path / "a.jsonl")], text_field="body",
                    id_field="uid", domain_field="meta.lang")
    assert _scored(cfg).column("source").to_pylist() == ["a", "a"]   # the file name


def test_missing_struct_field_in_parquet_lists_the_nested_columns(tmp_path: Path) -> None:
    pq.write_table(pa.Table.from_pylist(_nested(2)), tmp_path / "p.parquet")
    with pytest.raises(UserError) as err:
        _score(tmp_path, paths=[str(tmp_path / "p.parquet")], text_field="body",
               id_field="uid", domain_field="meta.language")
    assert ("p.parquet: input.domain_field = 'meta.language' is not a column (columns: body, "
            "meta, meta.lang, meta.origin, meta.url, uid)") in str(err.value)


def test_too_many_quarantined_rows_stop_the_stage_with_reasons(tmp_path: Path) -> None:
    rows = _nested(2) + [{"uid": f"x{i}", "body": "no language here", "meta": {}}
                         for i in range(3)]
    write_jsonl(tmp_path / "a.jsonl", rows)
    keys = dict(paths=[str(tmp_path / "a.jsonl")], text_field="body", id_field="uid",
                domain_field="meta.lang")
    with pytest.raises(UserError) as err:
        _score(tmp_path, **keys)
    message = str(err.value)
    assert message.startswith("ingest: quarantined 3 of 5 rows (60%) > "
                              "input.max_quarantine_fraction 0.5; top reasons: quarantined "
                              "missing_domain 3 (first: ")
    assert "a.jsonl row 2: no domain from field" in message
    cfg, totals = _score(tmp_path, **keys, max_quarantine_fraction=0.6)
    assert totals["scored"].written == 2


def test_a_stage_that_writes_nothing_fails(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [{"id": "1", "text": "  ", "domain": "web"}])
    with pytest.raises(UserError, match=r"ingest: wrote 0 of the 1 rows it read; top reasons: "
                                        r"quarantined empty_text 1"):
        _score(tmp_path, paths=[str(tmp_path / "a.jsonl")], max_quarantine_fraction=1.0)


def test_the_cli_exits_2_on_a_mapping_mistake(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    write_jsonl(tmp_path / "a.jsonl", _nested(3))
    config = write_config(tmp_path / "c.yaml", score=NO_SCORERS, input={
        "paths": [str(tmp_path / "a.jsonl")], "text_field": "body", "id_field": "uid",
        "domain_field": "lang"})
    assert main(["score", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "input.domain_field = 'lang' is in no record" in err and "Traceback" not in err


def test_auto_format_takes_a_saved_dataset_folder_whole(tmp_path: Path) -> None:
    """Was: dataset_info.json and state.json read as JSONL and quarantined."""
    import datasets

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    datasets.Dataset.from_list(_nested(3, "it")).save_to_disk(str(corpus / "saved"))
    write_jsonl(corpus / "more.jsonl", _nested(2, "nl"))
    cfg, totals = _score(tmp_path, paths=[str(corpus)], **NESTED_MAPPING)
    assert totals["ingest"].read == 5 and totals["ingest"].quarantined == {}
    assert sorted(_scored(cfg).column("domain").to_pylist()) == ["it"] * 3 + ["nl"] * 2


def test_a_dataset_dict_folder_asks_for_one_split(tmp_path: Path) -> None:
    import datasets

    dd = datasets.DatasetDict({"train": datasets.Dataset.from_list(_nested(2)),
                               "test": datasets.Dataset.from_list(_nested(1))})
    dd.save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(UserError, match=r"dd: holds a DatasetDict \(splits: test, train\); "
                                        "point input.paths at one split's folder"):
        _score(tmp_path, paths=[str(tmp_path / "dd")], **NESTED_MAPPING)


# --- input.keep_fields ---------------------------------------------------------------------


def test_kept_fields_pass_through_with_one_type_per_run(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [
        {"id": "a1", "text": "first text", "domain": "web",
         "meta": {"url": "u1", "stars": 3, "tags": ["x", "y"], "ok": True}},
        {"id": "a2", "text": "second text", "domain": "web", "meta": {"url": "u2"}}])
    write_jsonl(tmp_path / "b.jsonl", [    # stars is a float here: the run's column is float
        {"id": "b1", "text": "third text", "domain": "web",
         "meta": {"url": "u3", "stars": 4.5, "tags": {"k": 1}, "ok": False}}])
    cfg, _ = _score(tmp_path, paths=[str(tmp_path / "*.jsonl")],
                    keep_fields=["meta.url", "meta.stars", "meta.tags", "meta.ok"])
    table = _scored(cfg)
    assert table.schema.field("meta_url").type == pa.string()
    assert table.schema.field("meta_stars").type == pa.float64()
    assert table.schema.field("meta_ok").type == pa.bool_()
    assert table.to_pylist()[0]["meta_tags"] == '["x","y"]'   # nested values as JSON text
    rows = {r["id"]: r for r in table.to_pylist()}
    assert [rows[i]["meta_stars"] for i in ("a1", "a2", "b1")] == [3.0, None, 4.5]
    assert rows["b1"]["meta_tags"] == '{"k":1}' and rows["a2"]["meta_url"] == "u2"
    for path in (cfg.run_dir / "scored").glob("*.parquet"):   # one schema in every shard
        assert pq.read_schema(path).field("meta_stars").type == pa.float64()


def test_kept_fields_take_names_and_a_value_of_another_type_is_quarantined(
        tmp_path: Path) -> None:
    # the type comes from the first CHECK_RECORDS records: a mix there would make it text
    n = CHECK_RECORDS + 1
    rows = [{"id": f"{i}", "text": f"text {i}", "domain": "web", "score": i} for i in range(n)]
    rows.append({"id": "x", "text": "text x", "domain": "web", "score": "high"})
    write_jsonl(tmp_path / "a.jsonl", rows)
    cfg, totals = _score(tmp_path, paths=[str(tmp_path / "a.jsonl")],
                         keep_fields={"my_score": "score"})
    assert _scored(cfg).column("my_score").to_pylist() == list(range(n))
    assert dict(totals["ingest"].quarantined) == {"kept_field_type": 1}
    detail = pq.read_table(cfg.run_dir / "quarantine" / "ingest-part-00000.parquet")
    assert detail.column("detail")[0].as_py().startswith(
        "input.keep_fields.my_score (score): 'high' is not int64")


def test_kept_field_missing_everywhere_is_a_mapping_mistake(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", _nested(2))
    with pytest.raises(UserError, match=r"input\.keep_fields\.meta_licence = 'meta\.licence' "
                                        r"is in no record"):
        _score(tmp_path, paths=[str(tmp_path / "a.jsonl")], keep_fields=["meta.licence"],
               **NESTED_MAPPING)


def test_kept_parquet_struct_fields_keep_their_arrow_types(tmp_path: Path) -> None:
    rows = [{**r, "meta": {**r["meta"], "year": 2000 + i}} for i, r in enumerate(_nested(3))]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "p.parquet")
    cfg, _ = _score(tmp_path, paths=[str(tmp_path / "p.parquet")],
                    keep_fields={"url": "meta.url", "year": "meta.year", "meta": "meta"},
                    **NESTED_MAPPING)
    table = _scored(cfg)
    assert table.column("year").to_pylist() == [2000, 2001, 2002]
    assert table.column("url").to_pylist()[2] == "https://x.org/en/2"
    assert pa.types.is_struct(table.schema.field("meta").type)   # a whole struct, as it was


@pytest.mark.parametrize("keep, message", [
    (["meta.id"], "input.keep_fields: .*column name 'meta_id'"),   # fine: no error expected
    ({"id": "meta.id"}, "column name 'id' is one metamix writes"),
    ({"a-b": "x"}, "column name 'a-b': use letters, digits and _"),
    (["meta..url"], "'meta..url': not a field path"),
    (["a.b", "a_b"], "column name 'a_b' given twice"),
])
def test_kept_field_names_are_checked_in_the_config(tmp_path: Path, keep, message: str) -> None:
    path = write_config(tmp_path / "c.yaml", input={"paths": ["x.jsonl"], "keep_fields": keep})
    if keep == ["meta.id"]:
        assert load_config(path).input.kept_columns() == {"meta_id": "meta.id"}
        return
    with pytest.raises(UserError, match=message):
        load_config(path)


def test_score_fields_must_name_kept_columns(tmp_path: Path) -> None:
    path = write_config(tmp_path / "c.yaml", input={
        "paths": ["x.jsonl"], "keep_fields": ["meta.q"], "score_fields": {"q": "higher"}})
    with pytest.raises(UserError, match=r"score_fields names columns not in keep_fields: "
                                        r"\['q'\] \(kept columns: \['meta_q'\]\)"):
        load_config(path)


def test_a_kept_field_may_not_take_a_scorer_column_name(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", _nested(2))
    cfg = load_config(write_config(tmp_path / "c.yaml", score={"scorers": [{"name": "c4"}]},
                                   input={"paths": [str(tmp_path / "a.jsonl")],
                                          "keep_fields": {"c4_drop_reason": "meta.url"},
                                          **NESTED_MAPPING}))
    with pytest.raises(UserError, match=r"input\.keep_fields\.c4_drop_reason: scorer 'c4' "
                                        r"writes a column of that name"):
        run_score(cfg, QUIET)


# --- where inputs and outputs meet ---------------------------------------------------------


def test_a_double_star_glob_through_a_symlink_loop_reads_each_file_once(tmp_path: Path) -> None:
    corpus = tmp_path / "in"
    (corpus / "deep").mkdir(parents=True)
    write_jsonl(corpus / "a.jsonl", [{"id": f"a{i}", "text": f"text {i}", "domain": "web"}
                                     for i in range(3)])
    write_jsonl(corpus / "deep" / "b.jsonl", [{"id": "b0", "text": "text b", "domain": "web"}])
    (corpus / "deep" / "loop").symlink_to(corpus, target_is_directory=True)
    _, totals = _score(tmp_path, paths=[str(corpus / "**" / "*.jsonl")])
    assert totals["ingest"].read == 4 and totals["ingest"].written == 4
    assert totals["ingest"].quarantined == {}


@pytest.mark.parametrize(("pattern", "out_dir"), [
    ("in", "in/out"),                   # a folder is walked whole
    ("in/**/*.parquet", "in/out"),      # so is everything under a ** glob
    ("in/*", "in"),                     # matches _cache/ and the run folder themselves
    ("in/*/k/scored/*.parquet", "in/out"),   # reaches into the run folder level by level
])
def test_out_dir_inside_an_inputs_folder_is_refused_before_any_work(
        tmp_path: Path, pattern: str, out_dir: str) -> None:
    (tmp_path / "in").mkdir()
    write_jsonl(tmp_path / "in" / "a.jsonl", [{"id": "a", "text": "text", "domain": "web"}])
    cfg = load_config(write_config(tmp_path / "c.yaml", run="k", out_dir=str(tmp_path / out_dir),
                                   input={"paths": [str(tmp_path / pattern)]}, score=NO_SCORERS))
    with pytest.raises(UserError, match=r"input\.paths: .* reaches .*, where this run writes "
                                        r"\(out_dir is inside the input's folder\)"):
        run_score(cfg, QUIET)
    assert not (cfg.run_dir / "ingest").exists()

