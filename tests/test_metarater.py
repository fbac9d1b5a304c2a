"""The Meta-rater loop end to end on a synthetic corpus whose best score is known."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError
from rich.console import Console

from metamix.config import RunConfig
from metamix.mixtures.metarater.run import MetaraterConfig, run_metarater
from metamix.mixtures.metarater.scores import load_score_matrix, select_top_fraction
from metamix.mixtures.proxies.synthetic import corpus_texts, make_corpus, make_tokenizer
from metamix.pipeline.selection import SelectConfig, load_weights_file, run_selection


def make_run(tmp_path: Path) -> RunConfig:
    cfg = RunConfig.model_validate({"run": "t", "out_dir": str(tmp_path / "out"), "seed": 0,
                                    "workers": 1, "progress": False,
                                    "input": {"paths": ["unused"]}})
    paths = make_corpus(cfg.run_dir, n_docs=600, n_valid=40, seed=1)
    make_tokenizer(cfg.run_dir / "tokenizer.json", corpus_texts(paths["scored"]))
    return cfg


SMALL = {"k": 32, "n_search_samples": 5000, "top_k": 16, "folds": 4, "seed_repeats": 2,
         "seed_repeat_configs": 2, "hard_filters": ["junk"], "fraction": 0.3}


def test_loop_learns_the_informative_score_and_resumes(tmp_path: Path) -> None:
    cfg = make_run(tmp_path)
    mcfg = MetaraterConfig(**SMALL)
    summary = run_metarater(cfg, mcfg, Console(quiet=True))
    out = cfg.run_dir / "metarater"
    runs = pq.read_table(out / "runs.parquet").to_pylist()
    # 32 Dirichlet + equal + 4 singles + random + 2 repeats + learned
    assert len(runs) == 32 + 1 + 4 + 1 + 2 + 1 and all(r["status"] == "ok" for r in runs)
    assert summary["scores"] == ["flag_count", "length_score", "noise_score", "quality"]
    budget = summary["token_budget"]             # shared cap: the 10% quantile of Dirichlet sizes
    assert all(r["train_tokens"] == min(budget, r["selection_tokens"]) for r in runs)
    assert summary["under_budget"] == sorted(r["run_id"] for r in runs
                                             if r["selection_tokens"] < budget)
    dirichlet = [r for r in runs if r["kind"] == "dirichlet"]
    assert sum(r["selection_tokens"] < budget for r in dirichlet) == 3     # 10% of 32, rounded down
    weights = load_weights_file(out / "weights.json")
    assert max(weights.weights, key=weights.weights.get) == "quality"
    assert max(weights.extra["importance"], key=weights.extra["importance"].get) == "quality"
    learned = summary["learned"]["loss"]
    assert learned < summary["baselines"]["random"]
    assert learned < summary["baselines"]["single-noise_score"]
    assert learned <= summary["dirichlet"]["median"]
    assert summary["learned"]["rank"] <= 5 and summary["cv"]["lightgbm"]["spearman"] > 0.3
    repeated = summary["seed_noise"]["per_config_std"]     # 2 configs the seed can change
    assert len(repeated) == 2 and all(std > 0 for std in repeated.values())
    by_id = {r["run_id"]: r for r in runs}
    assert all(by_id[k]["selection_tokens"] > budget for k in repeated)
    assert (out / "regressor.txt").read_text().startswith("tree")
    # Rerunning skips every finished proxy run.
    again = run_metarater(cfg, mcfg, Console(quiet=True))
    assert len(pq.read_table(out / "runs.parquet")) == len(runs)
    assert again["learned"]["loss"] == learned

    # `metamix select` with the learned weights file picks the very documents scored here.
    scored = sorted((cfg.run_dir / "scored").glob("*.parquet"))
    select = SelectConfig(weights_file=out / "weights.json", fraction=0.3, hard_filters=["junk"])
    run_selection(select, scored, tmp_path / "sel", progress=False)
    picked = {i for f in (tmp_path / "sel" / "selected").glob("*.parquet")
              for i in pq.read_table(f, columns=["id"]).column(0).to_pylist()}
    matrix = load_score_matrix(scored, summary["scores"], hard_filters=["junk"])
    mine = select_top_fraction(matrix, weights.weights, 0.3)
    assert picked == set(matrix.ids[mine])


def test_lower_is_better_scores_get_negative_weights(tmp_path: Path) -> None:
    cfg = make_run(tmp_path)
    mcfg = MetaraterConfig(**{**SMALL, "scores": ["quality", "noise_score"],
                              "lower_is_better": ["noise_score"], "seed_repeats": 1,
                              "baselines": False, "proxy": {"params": {"order": 2}}})
    summary = run_metarater(cfg, mcfg, Console(quiet=True))
    weights = load_weights_file(cfg.run_dir / "metarater" / "weights.json").weights
    assert weights["noise_score"] <= 0 < weights["quality"]
    assert abs(sum(abs(v) for v in weights.values()) - 1) < 1e-9
    assert summary["n_runs"] == 33 and summary["seed_noise"]["pooled_std"] is None


@pytest.mark.parametrize("bad", [
    {"k": 2}, {"bogus": 1}, {"proxy": {"trainer": "ngram", "params": {"nope": 1}}},
    {"scores": ["a"], "lower_is_better": ["b"]}, {"fraction": 0},
])
def test_config_rejects_bad_values(bad: dict) -> None:
    with pytest.raises(ValidationError):
        MetaraterConfig(**bad)


def test_unknown_target_domain_is_a_user_error(tmp_path: Path) -> None:
    from metamix.base.errors import UserError

    with pytest.raises(UserError, match="target"):
        run_metarater(make_run(tmp_path), MetaraterConfig(**{**SMALL, "target": "nope"}),
                      Console(quiet=True))


def test_metarater_section_and_overrides_in_the_run_config(tmp_path: Path) -> None:
    from metamix.base.errors import UserError
    from metamix.config import load_config

    config = tmp_path / "c.yaml"
    config.write_text("input: {paths: [x.jsonl]}\n"
                      "metarater: {k: 64, proxy: {trainer: ngram, params: {order: 2}}}\n")
    cfg = load_config(config, {"metarater.k": 8, "metarater.target": "web"})
    assert cfg.metarater is not None
    assert (cfg.metarater.k, cfg.metarater.proxy.params, cfg.metarater.target) == (
        8, {"order": 2}, "web")
    with pytest.raises(UserError, match=r"c\.yaml: metarater\.k"):
        load_config(config, {"metarater.k": 1})


def test_summary_ranks_and_noise_verdicts_by_hand() -> None:
    from metamix.mixtures.metarater.fit import CVScore
    from metamix.mixtures.metarater.run import PlannedRun
    from metamix.mixtures.metarater.summary import build_summary

    losses = {"dirichlet-000": 5.0, "dirichlet-001": 5.4, "dirichlet-000@seed1": 5.1,
              "equal": 5.05, "random": 4.5, "learned-x": 5.02}
    kinds = {"dirichlet-000@seed1": "dirichlet-repeat", "learned-x": "learned"}
    planned = [PlannedRun(k, kinds.get(k, k.split("-")[0]), {"a": 1.0}, None, 0)
               for k in losses]
    rows = {k: {"status": "ok", "mean_loss": v, "selection_tokens": 10, "error": None}
            for k, v in losses.items()}
    cv = {"lightgbm": CVScore(0.5, 0.01, (0.5,)), "ridge": CVScore(0.4, 0.02, (0.4,))}
    s = build_summary(planned=planned, rows=rows, target="mean", cv=cv, learned_id="learned-x",
                      predicted_loss=5.0, importance={"a": 1.0}, budget=10, names=["a"],
                      seconds=1.0, config={})
    assert s["ranks"] == {"random": 1, "dirichlet-000": 2, "learned-x": 3, "equal": 4,
                          "dirichlet-001": 5}
    assert s["seed_noise"]["pooled_std"] == pytest.approx(0.1 / 2 ** 0.5)   # std of 5.0, 5.1
    assert s["learned"]["rank"] == 3 and s["learned"]["of"] == 5 and s["k"] == 2
    assert "within 2 seed-noise std" in s["verdicts"][0] and "equal" in s["verdicts"][0]
    assert "random selection beats the learned weights by 0.52" in s["verdicts"][1]
    assert len(s["verdicts"]) == 2     # seed std 0.07 < half the Dirichlet spread (0.28)
    assert s["under_budget"] == [] and s["cv"]["ridge"]["rmse"] == pytest.approx(0.02 ** 0.5)
