"""The Meta-rater loop end to end on a synthetic corpus whose best score is known."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError
from rich.console import Console

from metamix.base.errors import UserError
from metamix.config import RunConfig
from metamix.mixtures.metarater.config import MetaraterConfig
from metamix.mixtures.metarater.run import run_metarater
from metamix.mixtures.proxies.synthetic import corpus_texts, make_corpus, make_tokenizer
from metamix.pipeline.selection import SelectConfig, load_weights_file, run_selection

DIRECTIONS = {"quality": "higher", "noise_score": "neutral", "length_score": "neutral",
              "flag_count": "neutral"}


def make_run(tmp_path: Path) -> RunConfig:
    cfg = RunConfig.model_validate({"run": "t", "out_dir": str(tmp_path / "out"), "seed": 0,
                                    "workers": 1, "progress": False,
                                    "input": {"paths": ["unused"]}})
    paths = make_corpus(cfg.run_dir, n_docs=600, n_valid=60, seed=1, targets=True)
    make_tokenizer(cfg.run_dir / "tokenizer.json", corpus_texts(paths["scored"]))
    return cfg


def targets(cfg: RunConfig) -> list[dict]:
    return [{"name": "reference", "kind": "text",
             "input": {"paths": [str(cfg.run_dir / "targets" / "reference.parquet")]}},
            {"name": "cloze", "kind": "choice", "path": str(cfg.run_dir / "targets" /
                                                            "cloze.jsonl")},
            {"name": "validation", "kind": "validation", "weight": 0.0}]


SMALL = {"k": 24, "n_search_samples": 5000, "top_k": 16, "folds": 4, "random_draws": 3,
         "hard_filters": ["junk"], "fraction": 0.3, "directions": DIRECTIONS}


def test_planted_score_gets_the_largest_weight_and_runs_hold_equal_tokens(
        tmp_path: Path) -> None:
    cfg = make_run(tmp_path)
    mcfg = MetaraterConfig(**SMALL, targets=targets(cfg))
    summary = run_metarater(cfg, mcfg, Console(quiet=True))
    out = cfg.run_dir / "metarater"
    runs = pq.read_table(out / "runs.parquet").to_pylist()
    # 24 Dirichlet + equal (quality only) + 1 single + 3 neutral scores x 2 ends + 3 random,
    # then per held-out target (each its own family) and for the final fit one run per
    # shrinkage amount (4)
    assert len(runs) == 24 + 1 + 1 + 6 + 3 + 2 * 4 + 4 and all(r["status"] == "ok" for r in runs)
    assert summary["scores"] == ["flag_count", "length_score", "noise_score", "quality"]

    # equal tokens: every run, random included, holds each domain's budget to within one
    # document (the first-fit cut), so total tokens agree to within a few documents
    budgets = summary["budget_tokens"]
    max_doc = max(len(t.split()) for t in corpus_texts(sorted(
        (cfg.run_dir / "scored").glob("*.parquet"))))
    for r in runs:
        assert sum(budgets.values()) - r["selection_tokens"] <= len(budgets) * max_doc
        assert r["selection_tokens"] <= sum(budgets.values())

    weights = load_weights_file(out / "weights.json")
    assert max(weights.weights, key=lambda n: abs(weights.weights[n])) == "quality"
    assert weights.weights["quality"] > 0
    rep = summary["report"]
    assert rep["learned"] < rep["random_mean"] and rep["gap_std"] < -2
    assert rep["rank"] <= 5 and set(rep["cv_spearman"]) == {"lightgbm", "ridge"}
    assert summary["targets"]["reference"]["shipped"] < summary["targets"]["reference"][
        "random_mean"]
    assert summary["runs"]["single-quality"]["report"] < summary["runs"][
        "single-noise_score+"]["report"]
    json.dumps(summary)   # the summary is plain JSON

    # one selection code path: `metamix select` with the shipped weights file and the same
    # budget ships exactly the documents the shipped weights' proxy trained on
    learned = next(r for r in runs if r["run_id"] == summary["shipped"]["run_id"])
    scored = sorted((cfg.run_dir / "scored").glob("*.parquet"))
    select = SelectConfig(weights_file=out / "weights.json", mode="token_budget",
                          token_budget=sum(budgets.values()), hard_filters=["junk"])
    run_selection(select, scored, tmp_path / "sel", progress=False)
    shipped = sorted(i for f in (tmp_path / "sel" / "selected").glob("*.parquet")
                     for i in pq.read_table(f, columns=["id"]).column(0).to_pylist())
    assert hashlib.sha256("\n".join(shipped).encode()).hexdigest() == \
        learned["selection_sha256"]
    assert len(shipped) == learned["selection_docs"]

    # rerunning skips every finished proxy run and reaches the same verdict
    again = run_metarater(cfg, mcfg, Console(quiet=True))
    assert len(pq.read_table(out / "runs.parquet")) == len(runs)
    assert again["report"] == summary["report"]


def test_undeclared_score_direction_stops_the_run_with_its_name(tmp_path: Path) -> None:
    cfg = make_run(tmp_path)
    partial = {k: v for k, v in DIRECTIONS.items() if k != "length_score"}
    mcfg = MetaraterConfig(**{**SMALL, "directions": partial}, targets=targets(cfg))
    with pytest.raises(UserError, match="length_score"):
        run_metarater(cfg, mcfg, Console(quiet=True))


def test_lower_direction_enters_negated(tmp_path: Path) -> None:
    cfg = make_run(tmp_path)
    mcfg = MetaraterConfig(**{**SMALL, "scores": ["quality", "noise_score"],
                              "directions": {"quality": "higher", "noise_score": "lower"},
                              "baselines": False}, targets=targets(cfg))
    run_metarater(cfg, mcfg, Console(quiet=True))
    weights = load_weights_file(cfg.run_dir / "metarater" / "weights.json").weights
    assert weights["noise_score"] <= 0 < weights["quality"]
    assert abs(sum(abs(v) for v in weights.values()) - 1) < 1e-9


def test_only_the_validation_target_warns(tmp_path: Path) -> None:
    cfg = make_run(tmp_path)
    mcfg = MetaraterConfig(**{**SMALL, "k": 8, "folds": 2, "baselines": False})
    console = Console(record=True, width=200)
    run_metarater(cfg, mcfg, console)
    assert "the only target is the in-distribution validation split" in console.export_text()


@pytest.mark.parametrize("bad", [
    {"k": 2}, {"bogus": 1}, {"proxy": {"trainer": "ngram", "params": {"nope": 1}}},
    {"scores": ["a"], "directions": {"b": "lower"}}, {"fraction": 0},
    {"targets": []}, {"targets": [{"kind": "validation", "weight": 0}]},
    {"targets": [{"kind": "validation"}, {"kind": "validation"}]},
    {"targets": [{"kind": "text", "name": "x"}]}, {"directions": {"a": "up"}},
    {"random_draws": 1},
])
def test_config_rejects_bad_values(bad: dict) -> None:
    with pytest.raises(ValidationError):
        MetaraterConfig(**bad)


def test_metarater_section_and_overrides_in_the_run_config(tmp_path: Path) -> None:
    from metamix.config import load_config

    config = tmp_path / "c.yaml"
    config.write_text("input: {paths: [x.jsonl]}\n"
                      "metarater: {k: 16, proxy: {trainer: ngram, params: {order: 2}},\n"
                      "  targets: [{name: t, kind: choice, path: items.jsonl}]}\n")
    cfg = load_config(config, {"metarater.k": 32})
    assert cfg.metarater is not None and cfg.metarater.k == 32
    assert cfg.metarater.targets[0].kind == "choice"
    with pytest.raises(UserError, match=r"c\.yaml: metarater\.k"):
        load_config(config, {"metarater.k": 1})


def test_kept_user_columns_enter_with_their_declared_directions(tmp_path: Path) -> None:
    """Kept user fields are scores when input.score_fields says which way they point; the
    others (here flag_count) are metadata that Meta-rater leaves alone."""
    cfg = make_run(tmp_path)
    cfg = cfg.model_copy(update={"input": cfg.input.model_copy(update={
        "keep_fields": ["quality", "noise_score", "length_score", "flag_count"],
        "score_fields": {"quality": "higher", "noise_score": "lower",
                         "length_score": "neutral"}})})
    mcfg = MetaraterConfig(**{**SMALL, "k": 8, "folds": 2, "baselines": False,
                              "directions": {}, "where": "domain = 'web'"},
                           targets=targets(cfg))
    summary = run_metarater(cfg, mcfg, Console(quiet=True))
    assert summary["scores"] == ["length_score", "noise_score", "quality"]
    # metarater.where: every run selects within web only
    assert summary["budget_tokens"]["code"] == 0 < summary["budget_tokens"]["web"]
    weights = load_weights_file(cfg.run_dir / "metarater" / "weights.json").weights
    assert weights["noise_score"] <= 0 <= weights["quality"]


def test_metarater_where_names_an_unknown_column(tmp_path: Path) -> None:
    cfg = make_run(tmp_path)
    mcfg = MetaraterConfig(**{**SMALL, "where": "lnag = 'en'"}, targets=targets(cfg))
    with pytest.raises(UserError, match=r"^metarater\.where: no column 'lnag' in the scored"):
        run_metarater(cfg, mcfg, Console(quiet=True))
