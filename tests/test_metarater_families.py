"""Meta-rater judged on target families it did not fit: a corpus where one family rewards a
source that the other two punish, and the parts the verdict is built from."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from rich.console import Console

from metamix.config import RunConfig
from metamix.mixtures.metarater.config import MetaraterConfig
from metamix.mixtures.metarater.families import FamilyScale, combine, gap
from metamix.mixtures.metarater.lofo import Holdout, choose_shrinkage, shrink
from metamix.mixtures.metarater.run import run_metarater
from metamix.mixtures.metarater.targets import ChoiceTarget, TextTarget
from metamix.mixtures.proxies.synthetic import corpus_texts, make_family_corpus, make_tokenizer
from metamix.pipeline.selection import load_weights_file

FAMILIES = ("alpha", "beta", "niche")


def _targets(run_dir: Path) -> list[dict]:
    out = []
    for f in FAMILIES:
        out.append({"name": f, "kind": "text", "family": f,
                    "input": {"paths": [str(run_dir / "targets" / f"{f}.parquet")]}})
        out.append({"name": f"{f}_cloze", "kind": "choice", "family": f,
                    "path": str(run_dir / "targets" / f"{f}_cloze.jsonl")})
    return out


def test_weights_do_not_follow_the_one_family_that_rewards_a_punished_source(
        tmp_path: Path) -> None:
    cfg = RunConfig.model_validate({"run": "t", "out_dir": str(tmp_path / "out"), "seed": 0,
                                    "workers": 1, "progress": False,
                                    "input": {"paths": ["unused"]}})
    paths = make_family_corpus(cfg.run_dir, n_docs=600, seed=3)
    make_tokenizer(cfg.run_dir / "tokenizer.json", corpus_texts(paths["scored"]))
    mcfg = MetaraterConfig(
        k=48, n_search_samples=5000, top_k=16, folds=4, random_draws=8, fraction=0.3,
        directions={"quality": "higher", "niche_score": "neutral", "noise_score": "neutral"},
        targets=_targets(cfg.run_dir))
    summary = run_metarater(cfg, mcfg, Console(quiet=True))
    runs = summary["runs"]
    fams = summary["families"]

    # the corpus does what it says: preferring the niche source helps the niche family and
    # hurts the others (family values are z-scores against random: negative = better)
    niche_first = runs["single-niche_score+"]["families"]
    assert niche_first["niche"] < -2 and niche_first["alpha"] > 2 and niche_first["beta"] > 2

    # fitted on all three families, the weights follow quality, not the niche source
    rows = pq.read_table(cfg.run_dir / "metarater" / "runs.parquet").to_pylist()
    fitted = json.loads(next(r["weights"] for r in rows if r["run_id"].startswith(
        "learned-s0-")))
    assert max(fitted, key=lambda n: abs(fitted[n])) == "quality" and fitted["quality"] > 0
    assert fitted["niche_score"] <= 0

    # held out, each family is judged on weights fitted on the other two: alpha and beta
    # gain from quality; weights fitted without niche learn to avoid its source, which the
    # niche family punishes -- and the verdict says so instead of averaging it away
    assert fams["alpha"]["learned"]["gap_std"] < -2 and fams["beta"]["learned"]["gap_std"] < -2
    assert fams["niche"]["learned"]["run_id"].startswith("lofo-niche-")
    assert fams["niche"]["learned"]["gap_std"] > 2
    assert any("not 2 std better on niche" in v for v in summary["verdicts"])
    for f in FAMILIES:
        lo, hi = fams[f]["learned"]["gap_interval"]
        assert lo <= fams[f]["learned"]["gap_std"] <= hi

    # so the fitted weighting loses to equal weights on held-out families and does not ship;
    # what ships holds no more of the niche source than random selections do
    means = summary["held_out"]["mean_gap_std"]
    assert means["equal"] < means["learned"] and summary["shipped"]["method"] == "equal"
    shipped = load_weights_file(cfg.run_dir / "metarater" / "weights.json").weights
    assert shipped.get("niche_score", 0.0) <= 0 < shipped["quality"]
    assert any("shipping equal weights" in v for v in summary["verdicts"])
    niche = [row for rows_ in summary["sources"].values() for row in rows_
             if row["source"] == "niche"]
    assert niche and all(r["share"] <= r["random_share"] + 2 * r["random_std"] for r in niche)

    # rerunning finds every run in the table and reaches the same verdict
    n_rows = pq.read_table(cfg.run_dir / "metarater" / "runs.parquet").num_rows
    again = run_metarater(cfg, mcfg, Console(quiet=True))
    assert pq.read_table(cfg.run_dir / "metarater" / "runs.parquet").num_rows == n_rows
    assert again["families"] == summary["families"]


def test_family_values_are_z_scores_against_random() -> None:
    targets = [TextTarget(name="t", family="f", input={"paths": ["x"]}),
               ChoiceTarget(name="c", family="f", path="y", weight=3.0)]
    values = {"r0": {"fit": {"t": 1.0, "c": 10.0}, "report": {"t": 2.0, "c": 20.0}},
              "r1": {"fit": {"t": 3.0, "c": 14.0}, "report": {"t": 4.0, "c": 20.0}},
              "x": {"fit": {"t": 0.0, "c": 16.0}, "report": {"t": 3.0, "c": 25.0}}}
    scale = FamilyScale.from_random(values, ["r0", "r1"], targets)
    families = {"f": targets}
    # fit: t mean 2, std sqrt(2); c mean 12, std sqrt(8): x -> (1*-sqrt(2) + 3*sqrt(2)) / 4
    assert scale.family_values(values["x"], "fit", families)["f"] == pytest.approx(
        2 * np.sqrt(2) / 4)
    # report: c does not vary among random draws -> unit scale, so c's z is 25 - 20 = 5
    assert scale.family_values(values["x"], "report", families)["f"] == pytest.approx(
        (0.0 / np.sqrt(2) + 3 * 5.0) / 4)
    assert combine({"a": -3.0, "b": 1.0}, ["a", "b"], "mean_z") == -1.0
    assert combine({"a": -3.0, "b": 1.0}, ["a", "b"], "worst_z") == 1.0


def test_gap_is_in_the_larger_noise_with_a_bootstrap_interval() -> None:
    randoms = [0.0, 1.0, 2.0, 3.0, 4.0]          # mean 2, std sqrt(2.5)
    g = gap(-3.0, randoms, None, [1.0, 5.0, -4.0], rng=np.random.default_rng(0))
    assert g.gap_std == pytest.approx(-5 / np.sqrt(2.5)) and g.rank == 2 and g.n_ranked == 3
    assert g.interval[0] < g.gap_std < g.interval[1] < 0
    seeded = gap(-3.0, randoms, 5.0, [], rng=np.random.default_rng(0))
    assert seeded.noise == 5.0 and seeded.gap_std == pytest.approx(-1.0)


def test_shrinkage_is_chosen_by_held_out_families_and_ties_go_towards_equal() -> None:
    fitted = np.array([1.0, 0.0, 0.0])
    equal = np.array([0.5, 0.5, 0.0])
    assert np.allclose(shrink(fitted, equal, 0.5), [0.75, 0.25, 0.0])
    holdouts = [Holdout("a", None, {0.0: "a0", 0.5: "a5", 1.0: "eq"}),   # type: ignore[arg-type]
                Holdout("b", None, {0.0: "b0", 0.5: "b5", 1.0: "eq"})]   # type: ignore[arg-type]
    report = {"a0": {"a": -4.0}, "a5": {"a": -3.0}, "b0": {"b": 2.0}, "b5": {"b": -1.0},
              "eq": {"a": -1.0, "b": -1.0}}
    # mean held-out value: 0.0 -> -1.0, 0.5 -> -2.0, 1.0 -> -1.0
    assert choose_shrinkage(report, holdouts, [0.0, 0.5, 1.0]) == 0.5
    # b's own verdict chooses without b: only a's values count, and 0.0 wins there
    assert choose_shrinkage(report, holdouts, [0.0, 0.5, 1.0], exclude="b") == 0.0
    tied = {"a0": {"a": -1.0}, "b0": {"b": -1.0}, "a5": {"a": -1.0}, "b5": {"b": -1.0},
            "eq": {"a": -1.0, "b": -1.0}}
    assert choose_shrinkage(tied, holdouts, [0.0, 0.5, 1.0]) == 1.0
