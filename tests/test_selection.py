"""Selection on small hand-built scored shards, with expected selections worked out by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import BaseModel, ValidationError

import metamix.pipeline.selection.run as selection_run
import metamix.pipeline.selection.write as selection_write
from metamix.pipeline.selection import (
    SelectConfig,
    SelectionError,
    SelectionInvariantError,
    load_mixture_file,
    load_weights_file,
    run_selection,
    save_weights_file,
)
from metamix.pipeline.selection.write import domain_file_name

NAN = float("nan")


def write_shard(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Rows need id/domain/score columns; text, source and n_tokens get defaults."""
    full = [{"text": f"text of {r['id']}", "source": "unit", "n_tokens": 10, **r} for r in rows]
    columns = {name: [r.get(name) for r in full] for name in full[0]}
    types = {"n_tokens": pa.int64()}
    table = pa.table({n: pa.array(v, type=types.get(n)) for n, v in columns.items()})
    pq.write_table(table, path)
    return path


def select(tmp_path: Path, rows: list[dict[str, Any]], **cfg: Any) -> tuple[dict, Path]:
    shard = write_shard(tmp_path / "scored.parquet", rows)
    out = tmp_path / "out"
    return run_selection(SelectConfig(**cfg), [shard], out, progress=False), out


def selected(out: Path, domain: str) -> list[dict[str, Any]]:
    return pq.read_table(out / "selected" / domain_file_name(domain)).to_pylist()


def ids(out: Path, domain: str) -> list[str]:
    return [r["id"] for r in selected(out, domain)]


def scores_by_id(out: Path, domain: str) -> dict[str, float]:
    return {r["id"]: r["combined_score"] for r in selected(out, domain)}


# --- normalization -------------------------------------------------------------------------


def test_minmax_maps_onto_0_5_and_nan_counts_as_worst(tmp_path: Path) -> None:
    rows = [{"id": i, "domain": "web", "s": v}
            for i, v in [("a", 0.0), ("b", 5.0), ("c", 10.0), ("d", NAN), ("e", None)]]
    _, out = select(tmp_path, rows, weights={"s": 2.0}, fraction=1.0)
    # min 0, max 10 over the finite values: 2 * 5 * (v - 0) / 10; NaN/NULL -> 0.
    assert scores_by_id(out, "web") == {"a": 0.0, "b": 5.0, "c": 10.0, "d": 0.0, "e": 0.0}
    assert ids(out, "web") == ["c", "b", "a", "d", "e"]  # ties (0.0) ordered by id


def test_percentile_uses_percent_rank_with_shared_ties(tmp_path: Path) -> None:
    rows = [{"id": i, "domain": "web", "s": v}
            for i, v in [("a", 10), ("b", 20), ("c", 20), ("d", 40), ("e", None)]]
    _, out = select(tmp_path, rows, weights={"s": 1.0}, normalization="percentile",
                    fraction=1.0)
    # 4 finite values: rank-1 / (n-1) = 0, 1/3, 1/3, 1, scaled by 5.
    got = scores_by_id(out, "web")
    assert got == pytest.approx({"a": 0.0, "b": 5 / 3, "c": 5 / 3, "d": 5.0, "e": 0.0})


def test_constant_column_normalizes_to_zero(tmp_path: Path) -> None:
    rows = [{"id": f"d{i}", "domain": "web", "s": 3.0, "t": float(i)} for i in range(3)]
    _, out = select(tmp_path, rows, weights={"s": 1.0, "t": 1.0}, fraction=1.0)
    assert scores_by_id(out, "web") == {"d0": 0.0, "d1": 2.5, "d2": 5.0}


def test_negative_weight_prefers_low_values_and_nan_still_worst(tmp_path: Path) -> None:
    rows = [{"id": i, "domain": "web", "s": v}
            for i, v in [("a", 3.0), ("b", 1.0), ("c", NAN), ("d", 2.0)]]
    _, out = select(tmp_path, rows, weights={"s": -1.0}, fraction=1.0)
    # norm: b 0, d 2.5, a 5; the NaN gets norm 5 (worst for a negative weight) and loses the
    # tie with a on id.
    assert scores_by_id(out, "web") == {"b": -0.0, "d": -2.5, "a": -5.0, "c": -5.0}
    assert ids(out, "web") == ["b", "d", "a", "c"]


def test_combined_score_sums_weighted_normalized_columns(tmp_path: Path) -> None:
    rows = [{"id": "a", "domain": "web", "x": 0.0, "y": 100},
            {"id": "b", "domain": "web", "x": 4.0, "y": 0},
            {"id": "c", "domain": "web", "x": 2.0, "y": 50}]
    _, out = select(tmp_path, rows, weights={"x": 0.5, "y": 0.25}, fraction=1.0)
    # a: 0.5*0 + 0.25*5 = 1.25; b: 0.5*5 + 0 = 2.5; c: 0.5*2.5 + 0.25*2.5 = 1.875
    assert scores_by_id(out, "web") == {"a": 1.25, "b": 2.5, "c": 1.875}
    rows_out = selected(out, "web")
    assert [r["selection_rank"] for r in rows_out] == [1, 2, 3]


# --- top fraction ----------------------------------------------------------------------------


def two_domain_rows() -> list[dict[str, Any]]:
    """web scores 6..9, code scores 0..3: globally all the best docs are web."""
    return ([{"id": f"w{i}", "domain": "web", "s": float(6 + i)} for i in range(4)]
            + [{"id": f"c{i}", "domain": "code", "s": float(i)} for i in range(4)])


def test_global_top_fraction_ignores_domains(tmp_path: Path) -> None:
    summary, out = select(tmp_path, two_domain_rows(), weights={"s": 1.0}, fraction=0.5)
    assert ids(out, "web") == ["w3", "w2", "w1", "w0"]
    assert ids(out, "code") == []  # the file exists, empty, with the full schema
    assert summary["quotas"] == {"max_docs_global": 4}
    assert summary["domains"]["code"]["dropped_docs"] == {"not_selected": 4}


def test_per_domain_top_fraction_keeps_best_of_each(tmp_path: Path) -> None:
    summary, out = select(tmp_path, two_domain_rows(), weights={"s": 1.0}, fraction=0.5,
                          per_domain=True)
    assert ids(out, "web") == ["w3", "w2"]
    assert ids(out, "code") == ["c3", "c2"]
    assert [r["selection_rank"] for r in selected(out, "code")] == [1, 2]
    assert summary["totals"]["docs_after"] == 4


def test_fraction_rounds_up_without_float_noise(tmp_path: Path) -> None:
    rows = [{"id": f"d{i:02d}", "domain": "web", "s": float(i)} for i in range(10)]
    _, out = select(tmp_path, rows, weights={"s": 1.0}, fraction=0.3)  # 0.3*10 = 3.0000...4
    assert len(ids(out, "web")) == 3
    _, out = select(tmp_path, rows, weights={"s": 1.0}, fraction=0.15)  # ceil(1.5) = 2
    assert ids(out, "web") == ["d09", "d08"]


def test_ties_break_by_id(tmp_path: Path) -> None:
    rows = [{"id": i, "domain": "web", "s": 1.0} for i in ["b", "d", "a", "c"]]
    _, out = select(tmp_path, rows, weights={"s": 1.0}, fraction=0.5)
    assert ids(out, "web") == ["a", "b"]


# --- token budget ----------------------------------------------------------------------------


def budget_rows() -> list[dict[str, Any]]:
    """web: 3 docs of 20 tokens (60); code: 2 docs of 15 tokens (30)."""
    return ([{"id": f"w{i}", "domain": "web", "s": float(i), "n_tokens": 20} for i in range(3)]
            + [{"id": f"c{i}", "domain": "code", "s": float(i), "n_tokens": 15}
               for i in range(2)])


@pytest.mark.parametrize("nested", [False, True])
def test_token_budget_from_mixture_file_with_shortfall(tmp_path: Path, nested: bool) -> None:
    weights = {"web": 0.5, "code": 0.5}
    mixture = tmp_path / "mixture.json"
    if nested:
        mixture.write_text(json.dumps({"weights": weights, "total_tokens": 100, "loss": 2.0}))
        extra: dict[str, Any] = {}
    else:
        mixture.write_text(json.dumps(weights))
        extra = {"token_budget": 100}
    summary, out = select(tmp_path, budget_rows(), weights={"s": 1.0}, mode="token_budget",
                          mixture_file=mixture, **extra)
    # code asks 50 but has 30: it keeps all 30, and its 20 missing tokens go to web (the
    # only other domain), whose budget 50 + 20 = 70 is capped by its 60 tokens: 10 of the
    # 100 find no domain. web keeps all 3 docs.
    assert ids(out, "code") == ["c1", "c0"]
    assert ids(out, "web") == ["w2", "w1", "w0"]
    assert summary["quotas"]["requested_tokens"] == {"web": 50, "code": 50}
    assert summary["quotas"]["budget_tokens"] == {"web": 60, "code": 30}
    assert summary["domains"]["web"]["tokens_after"] == 60
    assert summary["warnings"] == [
        "domain 'code': budget 50 tokens but only 30 eligible; its 20 missing tokens go to "
        "the other domains by their mixture weights",
        "10 tokens of the mixture's budget found no domain with eligible tokens left: the "
        "selection is that much smaller"]
    # what ships: 60 / 90 and 30 / 90, beside the mixture's 0.5 / 0.5
    assert summary["shares"] == {"shipped": {"code": 0.333333, "web": 0.666667},
                                 "chosen": weights | {}, "mixture": weights | {}}


def test_token_budget_without_mixture_is_proportional(tmp_path: Path) -> None:
    summary, out = select(tmp_path, budget_rows(), weights={"s": 1.0}, mode="token_budget",
                          token_budget=45)
    # shares 60/90 and 30/90 of 45 -> web 30 (one doc), code 15 (one doc).
    assert summary["quotas"]["budget_tokens"] == {"web": 30, "code": 15}
    assert ids(out, "web") == ["w2"]
    assert ids(out, "code") == ["c1"]
    assert summary["warnings"] == []


def test_token_budget_skips_a_doc_that_does_not_fit_and_keeps_filling(tmp_path: Path) -> None:
    # ranked by s: a (30 tokens), b (50), c (10), d (25), e (5); budget 70 (one domain)
    rows = [{"id": i, "domain": "web", "s": float(s), "n_tokens": n}
            for i, s, n in (("a", 5, 30), ("b", 4, 50), ("c", 3, 10), ("d", 2, 25), ("e", 1, 5))]
    summary, out = select(tmp_path, rows, weights={"s": 1.0}, mode="token_budget",
                          token_budget=70)
    # a fits (30); b would reach 80 > 70: skipped; c (40); d would reach 65: kept; e reaches 70
    assert ids(out, "web") == ["a", "c", "d", "e"]
    assert summary["domains"]["web"]["tokens_after"] == 70
    assert pq.read_table(out / "selected" / "web.parquet").column(
        "selection_rank").to_pylist() == [1, 3, 4, 5]


def test_token_budget_overriding_mixture_total_is_reported(tmp_path: Path) -> None:
    mixture = tmp_path / "mixture.json"
    mixture.write_text(json.dumps({"weights": {"web": 0.8, "code": 0.2}, "total_tokens": 999}))
    summary, out = select(tmp_path, budget_rows(), weights={"s": 1.0}, mode="token_budget",
                          mixture_file=mixture, token_budget=50)
    assert summary["quotas"]["budget_tokens"] == {"web": 40, "code": 10}
    assert ids(out, "code") == []
    assert any("overrides total_tokens 999" in w for w in summary["warnings"])


def test_mixture_domain_absent_from_data_is_warned(tmp_path: Path) -> None:
    mixture = tmp_path / "mixture.json"
    mixture.write_text(json.dumps({"web": 0.4, "code": 0.4, "books": 0.2}))
    summary, out = select(tmp_path, budget_rows(), weights={"s": 1.0}, mode="token_budget",
                          mixture_file=mixture, token_budget=50)
    assert summary["quotas"]["budget_tokens"] == {"web": 20, "code": 20}
    assert (ids(out, "web"), ids(out, "code")) == (["w2"], ["c1"])
    assert summary["warnings"] == [f"domain 'books': in mixture file {mixture} but absent "
                                   "from the scored input; budget unfilled"]
    assert not (out / "selected" / "books.parquet").exists()


# --- hard filters, summary, invariant ---------------------------------------------------------


def test_hard_filters_count_each_row_once_under_first_listed_filter(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "domain": "web", "s": 1.0, "c4_drop_reason": "c4_curly",
         "gopher_quality_drop_reason": "gopher_short_doc"},
        {"id": "b", "domain": "web", "s": 2.0, "c4_drop_reason": None,
         "gopher_quality_drop_reason": "gopher_short_doc"},
        {"id": "c", "domain": "web", "s": 3.0, "c4_drop_reason": "c4_curly",
         "gopher_quality_drop_reason": None},
        {"id": "d", "domain": "web", "s": 4.0, "c4_drop_reason": None,
         "gopher_quality_drop_reason": None},
        {"id": "e", "domain": "web", "s": 5.0, "c4_drop_reason": None,
         "gopher_quality_drop_reason": None},
        {"id": "f", "domain": "code", "s": 9.0, "c4_drop_reason": None,
         "gopher_quality_drop_reason": "gopher_stop_words"},
    ]
    summary, out = select(tmp_path, rows, weights={"s": 1.0}, fraction=0.5, per_domain=True,
                          hard_filters=["gopher_quality", "c4"])
    assert ids(out, "web") == ["e"]  # 2 survivors, ceil(0.5 * 2) = 1
    assert summary["domains"]["web"]["dropped_docs"] == {
        "gopher_quality:gopher_short_doc": 2, "c4:c4_curly": 1, "not_selected": 1}
    assert summary["totals"]["dropped_docs"] == {
        "gopher_quality:gopher_short_doc": 2, "gopher_quality:gopher_stop_words": 1,
        "c4:c4_curly": 1, "not_selected": 1}
    assert summary["domains"]["code"]["docs_after"] == 0
    assert summary["invariant"] == {"rows_read": 6, "rows_written": 1, "rows_dropped": 5,
                                    "holds": True}
    # The filter-decision columns themselves are carried through to the output.
    assert selected(out, "web")[0]["c4_drop_reason"] is None


def test_summary_file_matches_return_and_has_distributions(tmp_path: Path) -> None:
    summary, out = select(tmp_path, two_domain_rows(), weights={"s": 1.0}, fraction=0.5)
    assert json.loads((out / "selection_summary.json").read_text()) == json.loads(
        json.dumps(summary))
    web = summary["domains"]["web"]
    assert web["file"] == "selected/web.parquet"
    assert (web["docs_before"], web["docs_after"]) == (4, 4)
    assert (web["tokens_before"], web["tokens_after"]) == (40, 40)
    raw_before = summary["totals"]["scores_before"]["s"]
    assert raw_before == {"count": 8, "missing": 0, "min": 0.0, "p10": 0.7, "p50": 4.5,
                          "p90": 8.3, "max": 9.0, "mean": 4.5}
    assert summary["domains"]["code"]["scores_after"]["combined_score"]["count"] == 0
    assert summary["domains"]["code"]["scores_after"]["combined_score"]["p50"] is None
    assert summary["totals"]["scores_after"]["combined_score"]["min"] == pytest.approx(5 * 6 / 9,
                                                                                     rel=1e-5)


def test_invariant_violation_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = selection_run.write_selected

    def write_one_extra_row(*args: Any, **kwargs: Any) -> dict[str, int]:
        written = real_write(*args, **kwargs)
        return {d: n + 1 for d, n in written.items()}

    monkeypatch.setattr(selection_run, "write_selected", write_one_extra_row)
    expected = r"domain code: rows read 4 != rows written 1 \+ rows dropped 4"
    with pytest.raises(SelectionInvariantError, match=expected):
        select(tmp_path, two_domain_rows(), weights={"s": 1.0}, fraction=0.5)
    assert not (tmp_path / "out" / "selection_summary.json").exists()


def test_output_schema_and_stale_domain_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    stale = out / "selected" / "old_domain.parquet"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"stale")
    summary, out = select(tmp_path, two_domain_rows(), weights={"s": 1.0}, fraction=0.5)
    assert not stale.exists()
    schema = pq.read_schema(out / "selected" / "web.parquet")
    assert schema.names == ["text", "source", "n_tokens", "id", "domain", "s",
                            "combined_score", "selection_rank"]
    assert schema.field("combined_score").type == pa.float64()
    assert schema.field("selection_rank").type == pa.int64()


def test_domain_file_names_are_safe_and_distinct() -> None:
    names = [domain_file_name(d) for d in ["web", "en/wiki", ".hidden", "..", "", "a b"]]
    assert names == ["web.parquet", "en-wiki~43c75ae8127ae79a.parquet",
                     "hidden~1692419006a88aab.parquet", "_~5ec1f7e700f37c3d.parquet",
                     "_~e3b0c44298fc1c14.parquet", "a-b~c8687a08aa5d6ed2.parquet"]


# --- determinism -----------------------------------------------------------------------------


def test_rerun_is_byte_identical_across_row_groups_and_shard_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small row groups and odd batch sizes so batch boundaries never line up with groups.
    monkeypatch.setattr(selection_write, "ROW_GROUP_ROWS", 1000)
    monkeypatch.setattr(selection_write, "ARROW_BATCH_ROWS", 333)
    n = 20_000
    rows = [{"id": f"doc{i:06d}", "domain": ["web", "code", "wiki"][i % 3],
             "s": float((i * 7919) % 1000), "t": (i * 31) % 17, "n_tokens": 5 + i % 50,
             "text": "lorem ipsum " * (i % 7)} for i in range(n)]
    shards = [write_shard(tmp_path / f"shard{k}.parquet", rows[k::4]) for k in range(4)]
    cfg = SelectConfig(weights={"s": 1.0, "t": 0.3}, fraction=0.9, per_domain=True,
                       normalization="percentile", duckdb_threads=2)

    def snapshot(out: Path) -> dict[str, bytes]:
        return {p.relative_to(out).as_posix(): p.read_bytes()
                for p in sorted(out.rglob("*")) if p.is_file()}

    run_selection(cfg, shards, tmp_path / "a", progress=False)
    first = snapshot(tmp_path / "a")
    run_selection(cfg, shards, tmp_path / "a", progress=False)
    run_selection(cfg, list(reversed(shards)), tmp_path / "b", progress=False)
    assert snapshot(tmp_path / "a") == first
    other = snapshot(tmp_path / "b")
    assert {k: v for k, v in other.items() if k != "selection_summary.json"} == {
        k: v for k, v in first.items() if k != "selection_summary.json"}
    web = pq.ParquetFile(tmp_path / "a" / "selected" / "web.parquet")
    assert web.metadata.num_rows == math.ceil(0.9 * 6667)
    assert [web.metadata.row_group(i).num_rows for i in range(web.num_row_groups)] == [
        1000] * 6 + [1]
    assert web.metadata.row_group(0).column(0).compression == "ZSTD"
    table = web.read(columns=["id", "combined_score", "selection_rank"]).to_pylist()
    keys = [(-r["combined_score"], r["id"]) for r in table]
    assert keys == sorted(keys)
    assert [r["selection_rank"] for r in table] == list(range(1, len(table) + 1))


# --- weights file ----------------------------------------------------------------------------


def test_weights_file_round_trip_and_selection_equivalence(tmp_path: Path) -> None:
    path = tmp_path / "learned.json"
    save_weights_file(path, {"s": 0.75, "t": -0.25}, normalization="percentile",
                      extra={"predicted_loss": 2.5, "importance": {"s": 0.9}})
    loaded = load_weights_file(path)
    assert loaded.weights == {"s": 0.75, "t": -0.25}
    assert loaded.normalization == "percentile"
    assert loaded.extra == {"predicted_loss": 2.5, "importance": {"s": 0.9}}

    rows = [{"id": f"d{i}", "domain": "web", "s": float(i), "t": float(i % 3)} for i in range(9)]
    summary, out = select(tmp_path, rows, weights_file=path, fraction=0.5)
    via_file = selected(out, "web")
    assert summary["resolved"]["normalization"] == "percentile"  # adopted from the file
    _, out = select(tmp_path, rows, weights={"s": 0.75, "t": -0.25},
                    normalization="percentile", fraction=0.5)
    assert selected(out, "web") == via_file


def test_weights_file_normalization_conflict_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "learned.json"
    save_weights_file(path, {"s": 1.0}, normalization="percentile")
    with pytest.raises(SelectionError, match="learned.json.*percentile.*minmax"):
        select(tmp_path, two_domain_rows(), weights_file=path, normalization="minmax")


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "invalid JSON"),
    ('{"normalization": "minmax"}', "missing key 'weights'"),
    ('{"weights": {"s": "high"}}', r"weights\.s must be a finite number"),
    ('{"weights": {"s": 1}, "normalization": "zscore"}', "normalization must be one of"),
    ("[1, 2]", "expected a JSON object"),
])
def test_bad_weights_file_names_file_and_key(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "w.json"
    path.write_text(content)
    with pytest.raises(SelectionError, match=f"weights file .*w.json: {message}"):
        load_weights_file(path)


# --- errors ----------------------------------------------------------------------------------


def test_unknown_or_non_numeric_weight_column(tmp_path: Path) -> None:
    with pytest.raises(SelectionError, match=r"weights\.nope: no such column"):
        select(tmp_path, two_domain_rows(), weights={"nope": 1.0})
    with pytest.raises(SelectionError, match=r"weights\.text: column is VARCHAR, not numeric"):
        select(tmp_path, two_domain_rows(), weights={"text": 1.0})


def test_misspelled_weight_column_names_the_key_and_suggests(tmp_path: Path) -> None:
    """Like ``select.where``: the full key, and the nearest numeric column (issue 29)."""
    rows = [{**r, "prrc_professionalism": r["s"]} for r in two_domain_rows()]
    with pytest.raises(SelectionError) as info:
        select(tmp_path, rows, weights={"prrc_profesionalism": 1.0})
    assert str(info.value) == ("select.weights.prrc_profesionalism: no such column in the "
                               "scored input; did you mean 'prrc_professionalism'?")
    with pytest.raises(SelectionError, match=r"^select\.weights\.zzz: no such column in the "
                       r"scored input; numeric columns: .*\bs\b"):
        select(tmp_path, rows, weights={"zzz": 1.0})
    path = tmp_path / "learned.json"
    save_weights_file(path, {"prrc_profesionalism": 1.0}, normalization="minmax")
    with pytest.raises(SelectionError, match=r"learned\.json: weights\.prrc_profesionalism: "
                       "no such column.*did you mean 'prrc_professionalism'"):
        select(tmp_path, rows, weights_file=path)


def test_unknown_hard_filter(tmp_path: Path) -> None:
    with pytest.raises(SelectionError, match="hard_filters: 'fineweb'.*fineweb_drop_reason"):
        select(tmp_path, two_domain_rows(), weights={"s": 1.0}, hard_filters=["fineweb"])


@pytest.mark.parametrize("fields", [{}, {"weights": {"s": 1.0}, "weights_file": "w.json"}])
def test_exactly_one_weights_source(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="exactly one of 'weights'.*'weights_file'"):
        SelectConfig(**fields)


def test_config_errors_carry_paths_when_embedded() -> None:
    class Root(BaseModel):
        select: SelectConfig

    with pytest.raises(ValidationError) as info:
        Root(select={"weights": {"s": 1.0}, "fraction": 1.5, "bogus": 1})
    locs = {tuple(e["loc"]) for e in info.value.errors()}
    assert locs == {("select", "fraction"), ("select", "bogus")}
    with pytest.raises(ValidationError, match="need mode: token_budget"):
        SelectConfig(weights={"s": 1.0}, token_budget=10)
    with pytest.raises(ValidationError, match="needs 'token_budget'"):
        SelectConfig(weights={"s": 1.0}, mode="token_budget")
    with pytest.raises(ValidationError, match=r"weights\.s"):
        Root(select={"weights": {"s": float("inf")}})


@pytest.mark.parametrize(("content", "message"), [
    ("{oops", "invalid JSON"),
    ('{"web": 1.0}', "no weight for domain 'code'"),
    ('{"web": 0.5, "code": 0.2}', "domain weights sum to 0.7, expected 1"),
    ('{"web": 1.5, "code": -0.5}', "code has a negative weight"),
    ('{"weights": {"web": 0.5, "code": 0.5}, "total_tokens": -3}', "total_tokens must be"),
    ('{"weights": {"web": 0.5, "code": 0.5}}', "no total_tokens"),
])
def test_bad_mixture_file_names_file_and_key(tmp_path: Path, content: str, message: str) -> None:
    mixture = tmp_path / "mix.json"
    mixture.write_text(content)
    with pytest.raises(SelectionError, match=f"mixture file .*mix.json: {message}"):
        select(tmp_path, budget_rows(), weights={"s": 1.0}, mode="token_budget",
               mixture_file=mixture)


def test_missing_mixture_file_and_shards(tmp_path: Path) -> None:
    with pytest.raises(SelectionError, match="mixture file .*absent.json: file not found"):
        load_mixture_file(tmp_path / "absent.json")
    with pytest.raises(SelectionError, match="scored shard not found"):
        run_selection(SelectConfig(weights={"s": 1.0}), [tmp_path / "x.parquet"], tmp_path,
                      progress=False)


def test_duplicate_ids_are_rejected(tmp_path: Path) -> None:
    rows = [{"id": "same", "domain": "web", "s": 1.0}, {"id": "same", "domain": "web", "s": 2.0}]
    with pytest.raises(SelectionError, match="'id' is not unique"):
        select(tmp_path, rows, weights={"s": 1.0})


def test_null_domain_and_corrupt_shard_are_clean_errors(tmp_path: Path) -> None:
    with pytest.raises(SelectionError, match="1 rows with NULL domain"):
        select(tmp_path, [{"id": "a", "domain": None, "s": 1.0}], weights={"s": 1.0})
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"not parquet at all")
    with pytest.raises(SelectionError, match="reading scored shards: .*corrupt.parquet"):
        run_selection(SelectConfig(weights={"s": 1.0}), [corrupt], tmp_path / "o",
                      progress=False)


def test_printed_table_shows_domains_invariant_and_warnings(tmp_path: Path) -> None:
    from rich.console import Console

    from metamix.pipeline.selection import print_summary

    mixture = tmp_path / "mixture.json"
    mixture.write_text(json.dumps({"web": 0.5, "code": 0.5}))
    summary, _ = select(tmp_path, budget_rows(), weights={"s": 1.0}, mode="token_budget",
                        mixture_file=mixture, token_budget=80)
    console = Console(record=True, width=120)
    print_summary(summary, console)
    text = console.export_text()
    assert "web" in text and "not_selected: 1" in text
    assert "rows read 5 = written 4 + dropped 1" in text
    # code's 10 missing tokens go to web (budget 50): still one web doc not selected
    assert "warning: domain 'code': budget 40 tokens" in text


def test_summary_statistics_equal_duckdbs_aggregates() -> None:
    """The summary computes its distributions in NumPy; they must be DuckDB's quantile_cont,
    min, max, count (exactly) and avg (to the 6 digits the summary keeps)."""
    import duckdb
    import numpy as np

    from metamix.pipeline.selection.summary import QUANTILES, _interpolate, score_stats

    rng = np.random.default_rng(7)
    con = duckdb.connect()
    n = 3000
    values = rng.normal(size=n) * 10.0 ** rng.integers(-3, 4, size=n)
    values[rng.random(n) < 0.1] = np.nan
    con.execute("CREATE TABLE t AS SELECT * FROM (SELECT unnest(?::VARCHAR[]) AS domain, "
                "unnest(?::DOUBLE[]) AS v, unnest(?::BOOLEAN[]) AS keep)",
                [rng.choice(["a", "b", "c"], n).tolist(), values.tolist(),
                 (rng.random(n) < 0.3).tolist()])
    con.execute("UPDATE t SET v = NULL WHERE isnan(v)")
    con.execute("UPDATE t SET keep = false WHERE domain = 'c'")  # no kept rows in c
    before, after = score_stats(con, "t", "keep", {"score": "v"})
    for where, stats in (("TRUE", before), ("keep", after)):
        rows = con.sql(
            f"SELECT domain, count(v), count(*) - count(v), min(v), quantile_cont(v, "
            f"{list(QUANTILES)}), max(v), avg(v) FROM t WHERE {where} GROUP BY GROUPING SETS "
            "((domain), ())").fetchall()
        assert {r[0] for r in rows} == set(stats)
        for domain, count, missing, lo, qs, hi, mean in rows:
            got = stats[domain]["score"]
            assert (got["count"], got["missing"]) == (count, missing)
            assert [got["min"], got["p10"], got["p50"], got["p90"], got["max"]] == [
                float(f"{x:.6g}") for x in (lo, *qs, hi)]
            assert got["mean"] == float(f"{mean:.6g}")
    assert "c" in before and "c" not in after
    ordered = np.sort(rng.normal(size=1001))
    con.execute("CREATE TABLE s AS SELECT unnest(?::DOUBLE[]) AS v", [ordered.tolist()])
    for q in (0.1, 0.25, 0.5, 0.9, 0.999):
        [(expected,)] = con.sql(f"SELECT quantile_cont(v, {q}) FROM s").fetchall()
        assert _interpolate(ordered, q) == expected  # bit-identical, before any rounding
