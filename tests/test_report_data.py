"""The data behind each report figure, checked by hand on the tiny run of
test_report_fixtures (8 documents in domains a and b, 10 Dirichlet runs, 11 mixture runs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from metamix.report import corpus_data, metarater_data, mix_data, scores_data, selection_data
from metamix.report.binning import bin_edges, histogram
from metamix.report.context import ReportOptions, RunContext
from metamix.report.runfiles import sample_rows, shard_paths
from tests.test_report_fixtures import DIRICHLET, make_run, mix_objective, mix_weight, text_of


@pytest.fixture
def run(tmp_path: Path) -> Path:
    return make_run(tmp_path)


def test_integer_data_get_unit_bins_and_outliers_fall_in_the_edge_bins() -> None:
    assert bin_edges(np.array([0.0, 1.0, 1.0, 2.0])).tolist() == [-0.5, 0.5, 1.5, 2.5]
    hist = histogram(pd.Series([0, 1, 1, 2, 5.0]), pd.Series(list("aabbb")),
                     edges=np.array([-0.5, 0.5, 1.5, 2.5]))
    a, b = hist[hist["group"] == "a"], hist[hist["group"] == "b"]
    assert a["count"].tolist() == [1, 1, 0] and b["count"].tolist() == [0, 1, 2]  # 5 -> last
    assert b["share"].tolist() == pytest.approx([0, 1 / 3, 2 / 3])
    edges = bin_edges(np.linspace(0, 1, 101), bins=4)
    assert edges.tolist() == pytest.approx([0.005, 0.2525, 0.5, 0.7475, 0.995])


def test_domain_counts_and_stage_accounting(run: Path) -> None:
    counts = corpus_data.domain_counts(run)
    assert counts.to_dict("records") == [
        {"split": "train", "domain": "a", "docs": 4, "tokens": 100.0},
        {"split": "train", "domain": "b", "docs": 4, "tokens": 1000.0},
        {"split": "validation", "domain": "a", "docs": 2, "tokens": 12.0}]
    manifests = corpus_data.stage_manifests(run)
    assert list(manifests) == ["ingest", "scored", "validation"]  # pipeline order
    summary = RunContext(run, ReportOptions()).selection_summary
    acc = corpus_data.stage_accounting(manifests, summary)
    assert acc.to_dict("records") == [
        {"stage": "ingest", "read": 9, "written": 8, "dropped": 0, "quarantined": 1,
         "adds_up": True},
        {"stage": "scored", "read": 8, "written": 8, "dropped": 0, "quarantined": 0,
         "adds_up": True},
        {"stage": "validation", "read": 2, "written": 2, "dropped": 0, "quarantined": 0,
         "adds_up": True},
        {"stage": "select", "read": 8, "written": 5, "dropped": 3, "quarantined": 0,
         "adds_up": True}]
    reasons = corpus_data.reasons(manifests, summary)
    assert reasons.to_dict("records") == [
        {"stage": "ingest", "outcome": "quarantined", "reason": "invalid_json", "rows": 1},
        {"stage": "select", "outcome": "dropped", "reason": "not_selected", "rows": 3}]
    examples = corpus_data.quarantine_examples(run)
    assert examples[["stage", "reason", "row"]].to_dict("records") == [
        {"stage": "ingest", "reason": "invalid_json", "row": 3}]


def test_accounting_flags_a_stage_that_does_not_add_up(run: Path) -> None:
    manifests = {"ingest": {"totals": {"read": 5, "written": 3, "dropped": {"x": 1},
                                       "quarantined": {}}}}
    acc = corpus_data.stage_accounting(manifests, None)
    assert acc["adds_up"].tolist() == [False]
    long = corpus_data.accounting_long(acc)
    assert long[["outcome", "rows"]].to_dict("records") == [
        {"outcome": "written", "rows": 3}, {"outcome": "dropped", "rows": 1},
        {"outcome": "quarantined", "rows": 0}]


def test_sample_is_every_row_or_a_deterministic_subset(run: Path) -> None:
    paths = shard_paths(run / "scored")
    full = sample_rows(paths, ["domain", "prrc_readability"], 100, seed=0)
    assert full["id"].tolist() == [f"d{i}" for i in range(1, 9)]
    part = sample_rows(paths, ["domain"], 3, seed=0)
    assert len(part) == 3 and part["id"].is_monotonic_increasing
    assert part.equals(sample_rows(paths, ["domain"], 3, seed=0))
    picks = {tuple(sample_rows(paths, ["domain"], 3, seed=s)["id"]) for s in range(6)}
    assert len(picks) > 1  # the seed picks the rows


def test_score_histograms_bin_flags_per_value_and_shares_sum_to_one(run: Path) -> None:
    sample = RunContext(run, ReportOptions()).sample
    hist = scores_data.score_histograms(sample, ["c4_has_lorem_ipsum", "rps_doc_word_count"])
    lorem = hist[hist["column"] == "c4_has_lorem_ipsum"]
    assert lorem["bin_mid"].unique().tolist() == [0.0, 1.0]
    assert lorem[lorem["domain"] == "a"]["count"].tolist() == [3, 1]
    assert lorem[lorem["domain"] == "b"]["count"].tolist() == [4, 0]
    for _, g in hist.groupby(["column", "domain"]):
        assert g["share"].sum() == pytest.approx(1.0)
        assert g["count"].sum() == 4
    # word counts: 99.5% quantile 396.5 < 10 x median 70, so linear bins
    assert set(hist["panel"]) == {"c4_has_lorem_ipsum", "rps_doc_word_count"}


def test_only_long_tailed_non_negative_scores_are_binned_on_a_log_scale() -> None:
    assert scores_data.skewed(pd.Series([1.0] * 90 + [1000.0] * 10))  # counts, long tail
    assert not scores_data.skewed(pd.Series(np.linspace(0, 1, 50)))  # a fraction
    assert not scores_data.skewed(pd.Series([-1.0] + [1000.0] * 5))  # log-probabilities
    assert not scores_data.skewed(pd.Series([50.0, 100.0, 200.0, 400.0]))  # no long tail
    hist = scores_data.score_histograms(
        pd.DataFrame({"n": [0.0, 9.0, 99.0, 999.0] * 10, "domain": ["a"] * 40}), ["n"],
        bins=3)
    assert hist["panel"].unique().tolist() == ["n (log10 1+x)"]
    assert hist["bin_mid"].tolist() == [0, 1, 2, 3]  # log10(1 + n)
    assert hist["count"].tolist() == [10, 10, 10, 10]


def test_spearman_correlation_by_hand(run: Path) -> None:
    sample = RunContext(run, ReportOptions()).sample
    corr = scores_data.correlation(sample, ["rps_doc_word_count", "prrc_readability"])
    rho = corr[(corr["a"] == "rps_doc_word_count") & (corr["b"] == "prrc_readability")]
    # word ranks 1..8; readability ranks 2,4,6,7,1,3,5,8: sum d^2 = 52, 1 - 6*52/(8*63)
    assert rho["rho"].item() == pytest.approx(1 - 6 * 52 / (8 * 63), abs=1e-4)
    assert len(corr) == 4  # both triangles and the diagonal


def test_drop_reasons_per_filter_and_domain(run: Path) -> None:
    drops = scores_data.drop_reasons(shard_paths(run / "scored"), ["c4_drop_reason"])
    assert drops.to_dict("records") == [
        {"filter": "c4", "domain": "a", "reason": "lorem_ipsum", "docs": 1, "share": 0.25},
        {"filter": "c4", "domain": "a", "reason": "too_few_sentences", "docs": 1,
         "share": 0.25},
        {"filter": "c4", "domain": "b", "reason": "too_few_sentences", "docs": 2,
         "share": 0.5}]


def test_prrc_examples_are_the_ends_of_the_whole_corpus_with_excerpts(run: Path) -> None:
    ex = scores_data.prrc_examples(shard_paths(run / "scored"), ["prrc_readability"], k=2,
                                   chars=30)
    assert ex[["end", "rank", "id", "score"]].to_dict("records") == [
        {"end": "top", "rank": 1, "id": "d8", "score": 4.5},
        {"end": "top", "rank": 2, "id": "d4", "score": 4.0},
        {"end": "bottom", "rank": 1, "id": "d5", "score": 0.5},
        {"end": "bottom", "rank": 2, "id": "d1", "score": 1.0}]
    assert ex["excerpt"].tolist() == [text_of(i)[:30] for i in ("d8", "d4", "d5", "d1")]
    assert set(ex["dimension"]) == {"readability"}


def test_score_columns_are_grouped_by_family_and_split_when_long() -> None:
    cols = [f"rps_{i}" for i in range(14)] + ["gopher_rep_x", "gopher_y", "dsir_z", "prrc_r"]
    groups = scores_data.group_columns(cols, per_figure=12)
    assert [(t, len(c)) for t, c in groups] == [
        ("RedPajama (1/2)", 12), ("RedPajama (2/2)", 2), ("Gopher repetition", 1),
        ("Gopher quality", 1), ("PRRC raters", 1), ("Model-based and other scores", 1)]


def test_metarater_oof_predictions_come_from_the_summary(run: Path) -> None:
    oof = metarater_data.oof_predictions(metarater_data.load(run))
    ridge = oof[oof["regressor"] == "ridge"]
    assert ridge["run_id"].tolist() == [f"dirichlet-{i:03d}" for i in range(10)]
    # actual = the fit-half objective the regressor learned
    assert ridge["actual"].tolist() == pytest.approx([loss - 0.01 for _, loss in DIRICHLET])
    assert (ridge["predicted"] - ridge["actual"]).tolist() == pytest.approx(
        [0.001 * i for i in range(10)])
    assert set(oof["regressor"]) == {"lightgbm", "ridge"} and len(oof) == 20


def test_metarater_baselines_with_two_std_noise_intervals(run: Path) -> None:
    base = metarater_data.baselines(metarater_data.load(run))
    assert base["label"].tolist() == ["random (mean of draws)", "Dirichlet best", "learned",
                                      "Dirichlet median", "equal", "single-s1", "single-s2",
                                      "Dirichlet worst"]
    assert (base["hi"] - base["loss"]).tolist() == pytest.approx([0.04] * 8)
    assert base.set_index("label")["kind"]["single-s1"] == "single"


def test_metarater_report_key_drives_headline_and_diagnostics(tmp_path: Path) -> None:
    report = {"learned": 4.9, "random_mean": 4.81, "random_std": 0.05, "noise_std": 0.05,
              "gap_std": 1.8, "rank": 2, "n_runs": 12,
              "cv_spearman": {"lightgbm": 0.5, "ridge": 1.0}}
    mr = metarater_data.load(make_run(tmp_path, metarater_report=report))
    head = metarater_data.headline(mr).set_index("name")["value"]
    assert head["random_mean"] == 4.81 and head["cv_spearman.ridge"] == 1.0
    assert head["target manuals (text, weight 1.0): gap_std"] == 6.4
    random = metarater_data.baselines(mr).set_index("label").loc["random (mean of draws)"]
    assert (random["loss"], random["lo"], random["hi"]) == pytest.approx((4.81, 4.71, 4.91))
    diag = metarater_data.doc_length_diagnostics(mr)
    assert diag.to_dict("records") == [{"domain": "a", "learned_docs": 4,
                                        "learned_median_tokens": 500.0, "random_docs": 10.0,
                                        "random_median_tokens": 200.0}]


def test_metarater_weights_and_document_lengths(run: Path) -> None:
    mr = metarater_data.load(run)
    assert metarater_data.learned_weights(mr).to_dict("records") == [
        {"score": "s1", "weight": 0.7, "importance": 0.6},
        {"score": "s2", "weight": -0.3, "importance": 0.4}]
    lengths = metarater_data.doc_lengths(mr).set_index("run_id")
    assert len(lengths) == 16  # the failed attempt is not a run
    assert lengths.loc["dirichlet-002", "tokens_per_doc"] == 120.0
    assert lengths.loc["random-0", "loss"] == 4.8


def test_mix_search_trace_best_so_far_and_cost(run: Path) -> None:
    trace = mix_data.search_trace(mix_data.load(run))
    assert trace["kind"].tolist() == ["sample"] * 8 + ["bo"] * 2 + ["final"]
    expected = [mix_objective(mix_weight(i)) for i in range(1, 12)]
    assert trace["objective"].tolist() == pytest.approx(expected)
    # objective falls with w_x, so every searched run is the best so far; final is not search
    assert trace["best_so_far"].iloc[:10].tolist() == pytest.approx(expected[:10])
    assert np.isnan(trace["best_so_far"].iloc[10])
    # sample-3's failed attempt (2 s) counts in the cost: 1 + 1 + 2 + 1
    assert trace["proxy_seconds"].tolist()[:4] == [1.0, 2.0, 5.0, 6.0]


def test_mix_surrogate_oof_refit_and_kfold_table(run: Path) -> None:
    mix = mix_data.load(run)
    oof = mix_data.surrogate_oof(mix, folds=5, seed=0, names=("linear",))
    assert sorted(set(zip(oof["surrogate"], oof["features"], strict=True))) == [
        ("linear", "weights"), ("linear", "weights + MDE")]
    assert len(oof) == 20  # the 8 sampled and 2 BO runs, not the final one
    # losses are linear in w: held-out predictions are exact
    assert np.abs(oof["predicted"] - oof["actual"]).max() < 1e-9
    table = mix_data.surrogate_kfold(mix)
    assert table.to_dict("records") == [
        {"surrogate": "linear", "features": "weights", "spearman": 0.5, "mse": 0.1,
         "chosen": False},
        {"surrogate": "linear", "features": "weights + MDE", "spearman": 0.9, "mse": 0.01,
         "chosen": True}]


def test_mix_weights_prior_caps_and_final_losses(run: Path) -> None:
    mix = mix_data.load(run)
    w = mix_data.weights_vs_prior(mix)
    assert w[["domain", "chosen", "prior", "cap"]].to_dict("records") == [
        {"domain": "x", "chosen": 0.9, "prior": 0.4, "cap": 0.95},
        {"domain": "y", "chosen": 0.1, "prior": 0.6, "cap": 1.0}]
    assert mix_data.final_losses(mix).to_dict("records") == [
        {"domain": "x", "predicted": 4.06, "actual": 4.05},
        {"domain": "y", "predicted": 4.48, "actual": 4.475}]


def test_selection_tokens_drops_and_before_after(run: Path) -> None:
    ctx = RunContext(run, ReportOptions())
    summary = ctx.selection_summary
    per = selection_data.tokens_per_domain(summary)
    assert per[["domain", "before_tokens", "after_tokens", "budget_tokens"]].to_dict(
        "records") == [{"domain": "a", "before_tokens": 100, "after_tokens": 90,
                        "budget_tokens": 60},
                       {"domain": "b", "before_tokens": 1000, "after_tokens": 700,
                        "budget_tokens": 700}]
    assert per["kept_token_share"].tolist() == pytest.approx([0.9, 0.7])
    drops = selection_data.drops_per_domain(summary)
    assert drops[["domain", "docs", "tokens"]].values.tolist() == [["a", 1, 10], ["b", 2, 300]]
    cols = selection_data.weighted_columns(summary)
    assert cols == ["rps_doc_word_count", "prrc_readability", "c4_has_lorem_ipsum"]  # |w|
    after = sample_rows(shard_paths(run / "selected"), ["domain", *cols], 100, 0)
    hist = selection_data.before_after(ctx.sample, after, ["c4_has_lorem_ipsum"])
    by_stage = {s: g["count"].tolist() for s, g in hist.groupby("stage")}
    assert by_stage == {"before": [7, 1], "after": [4, 1]}  # only d3 has lorem ipsum


# --- issue 29: colours sized to the reasons, no empty panels ---------------------------


def test_seventeen_drop_reasons_get_seventeen_colours() -> None:
    """Tableau 10 cycled past 10 reasons, so 17 reasons read as 10 colours."""
    from metamix.report import charts_data
    from metamix.report.chartkit import distinct_colors

    for n in (3, 10, 17, 20, 33):
        assert len(set(distinct_colors(n))) == n
    reasons = [f"reason_{i:02d}" for i in range(17)]
    drops = pd.DataFrame({"filter": "gopher", "domain": "a", "reason": reasons, "docs": 1,
                          "share": 1 / 17})
    spec = charts_data.drop_reasons(drops, ["a"])
    [scale] = [p["encoding"]["color"]["scale"] for p in spec["concat"]]
    assert scale["domain"] == reasons and len(set(scale["range"])) == 17
    sel = charts_data.selection_drops(pd.DataFrame({"domain": "a", "reason": reasons,
                                                    "docs": 1, "tokens": 10}))
    assert len(set(sel["encoding"]["color"]["scale"]["range"])) == 17


def test_an_all_zero_score_column_gets_no_empty_panel(run: Path) -> None:
    """A constant column bins into one bin and its outline draws nothing: it is named in
    the caption instead of drawn as an empty panel."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from metamix.report.sections_data import scores_section

    for path in shard_paths(run / "scored"):
        table = pq.read_table(path)
        pq.write_table(table.append_column(
            "rps_doc_zero", pc.multiply(table.column("rps_doc_word_count"), 0.0)), path)
    section = scores_section(RunContext(run, ReportOptions()))
    panels = {f.id: {row["panel"] for rows in f.spec["datasets"].values() for row in rows}
              for f in section.figures if f.title.startswith("Score distributions")}
    [fig] = [f for f in section.figures if "rps_doc_word_count" in panels.get(f.id, ())]
    assert "rps_doc_zero" not in set().union(*panels.values())
    assert "Constant, not drawn: rps_doc_zero = 0." in fig.caption
