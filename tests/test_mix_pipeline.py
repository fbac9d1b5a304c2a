"""``run_mix`` end to end on a tiny synthetic corpus: files, caps, MDE, budgets, resume."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from pydantic import ValidationError
from rich.console import Console

import metamix.mixtures.sweep as sweep
from metamix.base.errors import UserError
from metamix.config import RunConfig
from metamix.mixtures.mix.config import MixConfig
from metamix.mixtures.mix.data import DomainIndex, mixture_data, token_allocation
from metamix.mixtures.mix.fitting import objective_weights
from metamix.mixtures.mix.pipeline import run_mix
from metamix.mixtures.mix.runs_table import load_runs_table
from metamix.mixtures.proxies import ValidationSet, load_token_cache, make_trainer
from metamix.mixtures.proxies.synthetic import corpus_texts, make_corpus, make_tokenizer
from metamix.pipeline.selection import SelectConfig, load_mixture_file, run_selection

DOMAINS = ("books", "code", "web")
SMALL: dict[str, Any] = {
    "n_runs": 8, "proxy_tokens": 3000, "folds": 3, "surrogates": ["linear", "gp"],
    "n_candidates": 2000, "top_k": 20, "bo_rounds": 1, "bo_batch": 2, "max_epochs": 1.0,
    "mde_tokens_per_domain": None, "workers": 1,
}


def make_run(root: Path) -> RunConfig:
    cfg = RunConfig.model_validate({"run": "t", "out_dir": str(root / "out"), "seed": 0,
                                    "workers": 1, "progress": False,
                                    "input": {"paths": ["unused"]}})
    paths = make_corpus(cfg.run_dir, n_docs=240, n_valid=24, domains=DOMAINS, seed=3)
    make_tokenizer(cfg.run_dir / "tokenizer.json", corpus_texts(paths["scored"]))
    return cfg


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunConfig, dict[str, Any]]:
    cfg = make_run(tmp_path_factory.mktemp("mix"))
    return cfg, run_mix(cfg, MixConfig(**SMALL), Console(quiet=True))


def _caches(cfg: RunConfig) -> tuple[str, str]:
    caches = sorted((cfg.resolve(cfg.out_dir) / "_cache" / "tokens").iterdir(),
                    key=lambda p: json.loads((p / "meta.json").read_text())["n_docs"])
    return str(caches[1]), str(caches[0])    # (train, validation): validation is smaller


def test_emits_consistent_mixture_files(mixed: tuple[RunConfig, dict[str, Any]]) -> None:
    cfg, summary = mixed
    out = cfg.run_dir / "mixture"
    mixture = load_mixture_file(out / "weights.json")
    assert set(mixture.weights) == set(DOMAINS)
    assert math.isclose(sum(mixture.weights.values()), 1.0, abs_tol=1e-9)
    assert mixture.total_tokens == summary["total_tokens"] > 0
    data = json.loads((out / "weights.json").read_text())
    assert yaml.safe_load((out / "weights.yaml").read_text())["weights"] == data["weights"]
    per = data["per_domain"]
    for d, w in data["weights"].items():
        assert per[d]["tokens"] == round(w * data["total_tokens"])
        assert math.isclose(per[d]["epochs"], per[d]["tokens"] / per[d]["available_tokens"],
                            rel_tol=1e-3)
    assert set(data["predicted_losses"]) == set(data["actual_proxy_losses"]) == set(DOMAINS)
    assert data["provenance"]["n_runs_used"] == 8 + 2            # sampled + one BO round
    assert set(data["surrogate_kfold"]) == {"linear", "linear+mde", "gp", "gp+mde"}
    parts = (out / "megatron_data_path.txt").read_text().split()
    blend = dict(zip(parts[1::2], map(float, parts[0::2]), strict=True))
    assert blend == {f"data/megatron/{d}_text_document": w
                     for d, w in data["weights"].items() if w > 0}
    snippet = (out / "interleave_datasets.py").read_text()
    compile(snippet, "interleave_datasets.py", "exec")
    assert f"TOKEN_SHARES = {data['weights']!r}" in snippet
    assert str(cfg.run_dir) not in snippet + (out / "weights.json").read_text()  # no host paths
    # Timings and host facts live in logs/mix.json, so the mixture files can be byte-stable.
    assert "timings_s" not in data and data["provenance"]["runs_table"] == "mix/runs.parquet"
    assert all(set(s) == {"spearman", "mse"} for s in data["surrogate_kfold"].values())
    log = json.loads((cfg.run_dir / "logs" / "mix.json").read_text())
    assert log["timings_s"]["total"] > 0 and log["host"]["cpu_count"] >= 1
    assert set(log["surrogate_kfold_seconds"]) == set(data["surrogate_kfold"])
    runs = load_runs_table(cfg.run_dir / "mix" / "runs.parquet")
    assert runs.domains == list(DOMAINS) and runs.n_runs == 8 + 2 + 1
    assert runs.loss_columns == [f"loss_{d}" for d in DOMAINS]
    assert runs.mde_columns == [f"mde_{d}" for d in DOMAINS]


def test_selection_reads_the_mixture(mixed: tuple[RunConfig, dict[str, Any]],
                                     tmp_path: Path) -> None:
    cfg, summary = mixed
    select = SelectConfig(weights={"quality": 1.0}, mode="token_budget",
                          mixture_file=cfg.run_dir / "mixture" / "weights.json")
    scored = sorted((cfg.run_dir / "scored").glob("part-*.parquet"))
    run_selection(select, scored, tmp_path / "sel", progress=False)
    for d in DOMAINS:
        kept = pq.read_table(tmp_path / "sel" / "selected" / f"{d}.parquet").column("n_tokens")
        budget = math.floor(summary["weights"][d] * summary["total_tokens"])
        assert 0 < sum(kept.to_pylist()) <= budget


def test_caps_hold_for_sampled_proposed_and_chosen(mixed: tuple[RunConfig, dict]) -> None:
    cfg, summary = mixed
    caps = np.array([summary["per_domain"][d]["cap"] for d in DOMAINS])
    assert caps.min() < 1.0                                    # the caps actually bind
    runs = pq.read_table(cfg.run_dir / "mix" / "runs.parquet").to_pylist()
    assert {r["kind"] for r in runs} == {"sample", "bo", "final"}
    for r in runs:
        w = np.array([r[f"w_{d}"] for d in DOMAINS])
        assert (w <= caps + 1e-9).all() and math.isclose(w.sum(), 1.0, abs_tol=1e-9)
    chosen = np.array([summary["weights"][d] for d in DOMAINS])
    assert (chosen <= caps + 1e-6).all()


def test_mde_columns_match_brute_force(mixed: tuple[RunConfig, dict]) -> None:
    cfg, _ = mixed
    train, valid = _caches(cfg)
    probs = np.load(cfg.run_dir / "mix" / "experts" / "probs.npy")
    val = ValidationSet(valid).load()
    # Expert rows are what a fresh proxy on that domain alone gives each validation token.
    index = DomainIndex.of(load_token_cache(train))
    budget = int(min(SMALL["proxy_tokens"], index.available()[1]))
    data = mixture_data(train, index, np.eye(3)[1], budget, seed=0)
    fresh = make_trainer("ngram").fit_evaluate(data, ValidationSet(valid), return_logprobs=True)
    np.testing.assert_allclose(probs[1], np.exp(fresh.token_logprobs), rtol=1e-5)
    runs = pq.read_table(cfg.run_dir / "mix" / "runs.parquet").to_pylist()
    for r in runs[:3]:
        w = [r[f"w_{d}"] for d in DOMAINS]
        for v, name in enumerate(val.domain_names):
            toks = np.flatnonzero(val.token_domains == v)
            brute = np.mean([-math.log(sum(w[e] * float(probs[e, t]) for e in range(3)))
                             for t in toks])
            assert math.isclose(r[f"mde_{name}"], brute, rel_tol=1e-4)


def test_per_domain_budgets_are_exact(mixed: tuple[RunConfig, dict]) -> None:
    cfg, _ = mixed
    train, _ = _caches(cfg)
    corpus = load_token_cache(train)
    index = DomainIndex.of(corpus)
    weights = np.array([0.7, 0.2, 0.1])
    budget = int(index.available()[0] * 1.5)      # books must repeat (1.05 epochs)
    data = mixture_data(train, index, weights, budget, seed=4)
    rows, used = data.ordered_rows()
    got = {d: int(used[corpus.domains[rows] == d].sum()) for d in DOMAINS}
    assert list(got.values()) == token_allocation(weights, budget).tolist()
    assert sum(len(doc) for doc in data.documents()) == budget
    assert len(rows) > len(set(rows.tolist()))     # repeated documents for the extra epoch


def test_resume_reruns_only_missing_runs(mixed: tuple[RunConfig, dict], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, summary = mixed
    log = cfg.run_dir / "mix" / "attempts.parquet"
    table = pq.read_table(log)
    ids = table.column("run_id").to_pylist()
    dropped = {i for i in ids if i.startswith("sample-")}
    dropped = set(sorted(dropped)[:2])
    pq.write_table(table.filter(np.array([i not in dropped for i in ids])), log)
    executed: list[str] = []
    real = sweep.execute_task

    def counting(task: sweep.ProxyTask) -> dict[str, Any]:
        executed.append(task.run_id)
        return real(task)

    monkeypatch.setattr(sweep, "execute_task", counting)
    out = cfg.run_dir / "mixture"
    before = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    again = run_mix(cfg, MixConfig(**SMALL), Console(quiet=True))
    assert set(executed) == dropped
    assert again["weights"] == summary["weights"]
    # The rerun writes the same bytes (issue 11: timings used to make them differ).
    assert {p.name: p.read_bytes() for p in sorted(out.iterdir())} == before


def test_bad_inputs_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="n_runz"):
        MixConfig(n_runz=3)
    with pytest.raises(ValidationError, match="objective"):
        MixConfig(objective={"web": -1.0})
    with pytest.raises(UserError, match="unknown validation domain"):
        objective_weights({"nope": 1.0}, list(DOMAINS), np.zeros(3, dtype=int))
    empty = RunConfig.model_validate({"run": "e", "out_dir": str(tmp_path / "o"),
                                      "input": {"paths": ["unused"]}, "progress": False})
    with pytest.raises(UserError, match="metamix score"):
        run_mix(empty, MixConfig(**SMALL), Console(quiet=True))
    cfg = make_run(tmp_path)
    log = cfg.run_dir / "mix" / "attempts.parquet"
    log.parent.mkdir(parents=True)
    log.write_bytes(b"not parquet")
    with pytest.raises(UserError, match="attempts.parquet.*delete it"):
        run_mix(cfg, MixConfig(**SMALL), Console(quiet=True))
    with pytest.raises(UserError, match="max_epochs"):
        run_mix(cfg, MixConfig(**{**SMALL, "max_epochs": 0.5, "target_fraction": 1.0}),
                Console(quiet=True))


def test_proposals_without_bo_runs_and_token_objective(tmp_path: Path) -> None:
    cfg = make_run(tmp_path)
    small = {**SMALL, "bo_rounds": 0, "evaluate_final": False, "objective": "tokens",
             "surrogates": ["loglinear"], "max_epochs": 2.0, "target_fraction": 1.0}
    summary = run_mix(cfg, MixConfig(**small), Console(quiet=True))
    runs = pq.read_table(cfg.run_dir / "mix" / "runs.parquet").to_pylist()
    assert {r["kind"] for r in runs} == {"sample"} and len(runs) == 8
    assert summary["actual_proxy_loss"] is None and summary["actual_proxy_losses"] is None
    caps = np.array([summary["per_domain"][d]["cap"] for d in DOMAINS])
    assert (np.array([summary["weights"][d] for d in DOMAINS]) <= caps + 1e-6).all()
    tw = summary["objective"]["weights"]
    assert math.isclose(sum(tw.values()), 1.0) and len(set(tw.values())) > 1


def test_run_cli_loads_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import metamix.mixtures.mix.pipeline as pipeline_mod
    from metamix.cli import main

    seen: dict[str, Any] = {}
    monkeypatch.setattr(pipeline_mod, "run_mix",
                        lambda cfg, mcfg, console: seen.update(cfg=cfg, mcfg=mcfg) or {})
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"run": "r", "out_dir": str(tmp_path / "o"),
                                      "input": {"paths": ["x"]}}))
    assert main(["mix", "run", "--config", str(config)]) == 0
    assert seen["cfg"].run == "r" and seen["mcfg"] == MixConfig()
