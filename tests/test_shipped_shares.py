"""What ships is what the mixture says: mix plans on the documents select may ship, select
moves a shortfall by the documented rule, and every emitted artefact carries the shipped
shares (issue 29 item 1)."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from rich.console import Console

from metamix.cli import commands
from metamix.config import RunConfig
from metamix.mixtures.mix.data import eligible_index
from metamix.mixtures.mix.report import planned_shares
from metamix.mixtures.proxies import load_token_cache
from metamix.mixtures.proxies.synthetic import corpus_texts, make_corpus, make_tokenizer
from metamix.pipeline.export import run_export
from metamix.pipeline.selection import run_selection
from metamix.pipeline.selection.shares import redistribute, rounded_shares

DOMAINS = ("books", "code", "web")


def test_shortfall_goes_to_the_others_by_weight_capped_by_what_they_have() -> None:
    # a lacks 40: b and c get 40 x .3/.5 = 24 and 16; c has room for 5 only, so its other
    # 11 go to b (the one domain with room left): b = 30 + 24 + 11.
    assert redistribute({"a": 50, "b": 30, "c": 20}, {"a": 10, "b": 100, "c": 25},
                        {"a": 0.5, "b": 0.3, "c": 0.2}) == {"a": 10, "b": 65, "c": 25}
    # a weight-0 domain gets nothing; when every weighted domain is full the total shrinks
    assert redistribute({"a": 50, "b": 50, "z": 0}, {"a": 10, "b": 60, "z": 99},
                        {"a": 0.5, "b": 0.5, "z": 0.0}) == {"a": 10, "b": 60, "z": 0}
    # nothing short: the budgets as given
    assert redistribute({"a": 5, "b": 7}, {"a": 5, "b": 8}, {"a": 0.4, "b": 0.6}) == {
        "a": 5, "b": 7}


def test_rounded_shares_sum_to_one_exactly() -> None:
    shares = rounded_shares({"a": 1, "b": 1, "c": 1})
    assert shares == {"a": 0.333334, "b": 0.333333, "c": 0.333333}
    assert math.fsum(shares.values()) == 1.0


def test_mix_plans_the_shares_select_will_ship() -> None:
    # a asks 200 of 400 tokens but has 100: its other 100 go to b, so 0.25 / 0.75 ship
    assert planned_shares(["a", "b"], {"a": 0.5, "b": 0.5}, np.array([100.0, 1000.0]),
                          400) == ({"a": 0.25, "b": 0.75}, 400)
    # every budget fits: the chosen mixture and target as they are
    assert planned_shares(["a", "b"], {"a": 0.5, "b": 0.5}, np.array([300.0, 300.0]),
                          400) == ({"a": 0.5, "b": 0.5}, 400)


def _filtered_run(root: Path) -> RunConfig:
    """A synthetic run whose hard filter ``junk`` drops 4 of every 5 code documents."""
    cfg = RunConfig.model_validate({
        "run": "t", "out_dir": str(root / "out"), "seed": 0, "workers": 1, "progress": False,
        "input": {"paths": ["unused"]},
        "mix": {"n_runs": 6, "proxy_tokens": 3000, "folds": 2, "surrogates": ["linear"],
                "n_candidates": 1000, "top_k": 10, "bo_rounds": 0, "bo_batch": 2,
                "evaluate_final": False, "mde_tokens_per_domain": None, "workers": 1},
        "select": {"weights": {"quality": 1.0}, "hard_filters": ["junk"],
                   "mode": "token_budget", "mixture_file": str(root / "out" / "t" / "mixture"
                                                               / "weights.json")}})
    paths = make_corpus(cfg.run_dir, n_docs=240, n_valid=24, domains=DOMAINS, seed=3)
    for path in paths["scored"]:
        table = pq.read_table(path)
        junk = [("junk" if d == "code" and int(i[4:]) % 5 else None)
                for d, i in zip(table["domain"].to_pylist(), table["id"].to_pylist(),
                                strict=True)]
        table = table.set_column(table.schema.get_field_index("junk_drop_reason"),
                                 "junk_drop_reason", pa.array(junk, pa.string()))
        pq.write_table(table, path)
    make_tokenizer(cfg.run_dir / "tokenizer.json", corpus_texts(paths["scored"]))
    return cfg


def _tokens(cfg: RunConfig, eligible_only: bool) -> dict[str, int]:
    table = pa.concat_tables(pq.read_table(p) for p in
                             sorted((cfg.run_dir / "scored").glob("part-*.parquet")))
    out: dict[str, int] = {}
    for d, n, junk in zip(table["domain"].to_pylist(), table["n_tokens"].to_pylist(),
                          table["junk_drop_reason"].to_pylist(), strict=True):
        if not (eligible_only and junk is not None):
            out[d] = out.get(d, 0) + n
    return out


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunConfig, dict[str, Any]]:
    cfg = _filtered_run(tmp_path_factory.mktemp("shipped"))
    console = Console(quiet=True)
    commands.mix(cfg, console)
    commands.select(cfg, console, "c.yaml")
    for fmt in ("megatron", "jsonl"):
        run_export(cfg, console, fmt)
    return cfg, json.loads((cfg.run_dir / "selection_summary.json").read_text())


def test_mix_plans_only_on_eligible_documents(shipped: tuple[RunConfig, dict]) -> None:
    cfg, _ = shipped
    eligible, everything = _tokens(cfg, True), _tokens(cfg, False)
    assert eligible["code"] < everything["code"] / 4          # the filter bites
    mixture = json.loads((cfg.run_dir / "mixture" / "weights.json").read_text())
    for d in DOMAINS:
        row = mixture["per_domain"][d]
        assert row["available_tokens"] == eligible[d]
        assert row["tokens_before_eligibility"] == everything[d]
        # the cap is max_epochs (1) x the eligible tokens over the target
        assert math.isclose(row["cap"], min(eligible[d] / mixture["chosen_total_tokens"], 1))
    assert mixture["eligibility"] == {"hard_filters": ["junk"], "where": None,
                                      "drop_duplicates": True}
    # experts and proxy runs draw from these rows only: no junk document among them
    corpus = load_token_cache(str(next(
        p for p in (cfg.resolve(cfg.out_dir) / "_cache" / "tokens").iterdir()
        if json.loads((p / "meta.json").read_text())["n_docs"] == 240)))
    index = eligible_index(cfg, corpus).index
    junk_ids = {i for p in sorted((cfg.run_dir / "scored").glob("part-*.parquet"))
                for i, r in zip(*pq.read_table(p, columns=["id", "junk_drop_reason"])
                                .to_pydict().values(), strict=True) if r is not None}
    drawn = {corpus.ids[r] for d in index.domains for r in index.rows[d]}
    assert drawn and not drawn & junk_ids
    assert len(drawn) == 240 - len(junk_ids)


def test_every_artefact_carries_the_shipped_shares(shipped: tuple[RunConfig, dict]) -> None:
    cfg, summary = shipped
    kept = {d: e["tokens_after"] for d, e in summary["domains"].items()}
    total = sum(kept.values())
    shipped_shares = summary["shares"]["shipped"]
    assert shipped_shares == rounded_shares(kept)
    mixture = json.loads((cfg.run_dir / "mixture" / "weights.json").read_text())
    assert summary["shares"]["chosen"] == mixture["chosen_weights"]
    # weights.json/.yaml: the shares and tokens select was asked to ship; it fills them
    # but for less than a document per domain (first-fit; ~40 tokens here, 1% of the total)
    assert yaml.safe_load((cfg.run_dir / "mixture" / "weights.yaml").read_text())[
        "weights"] == mixture["weights"]
    longest = max(pq.read_table(p, columns=["n_tokens"]).column(0).to_numpy().max()
                  for p in (cfg.run_dir / "scored").glob("part-*.parquet"))
    for d in DOMAINS:
        budget = math.floor(round(mixture["weights"][d] * mixture["total_tokens"], 6))
        assert 0 <= budget - kept[d] < longest
    assert total <= mixture["total_tokens"]
    # the blend and the snippet in mixture/ carry exactly the shipped shares
    parts = (cfg.run_dir / "mixture" / "megatron_data_path.txt").read_text().split()
    assert {p.split("/")[-1].removesuffix("_text_document"): float(w)
            for w, p in zip(parts[0::2], parts[1::2], strict=True)} == shipped_shares
    snippet = ast.parse((cfg.run_dir / "mixture" / "interleave_datasets.py").read_text())
    constants = {n.targets[0].id: ast.literal_eval(n.value) for n in snippet.body
                 if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name)
                 and n.targets[0].id in ("TOKEN_SHARES", "CHOSEN_SHARES")}
    assert constants == {"TOKEN_SHARES": shipped_shares,
                         "CHOSEN_SHARES": mixture["chosen_weights"]}
    # export: the Megatron blend and both manifests
    export = cfg.run_dir / "export" / "megatron"
    parts = (export / "megatron_data_path.txt").read_text().split()
    assert {Path(p).name.removesuffix("_text_document"): float(w)
            for w, p in zip(parts[0::2], parts[1::2], strict=True)} == shipped_shares
    for fmt in ("megatron", "jsonl"):
        manifest = json.loads((cfg.run_dir / "_manifests" / f"export-{fmt}.json").read_text())
        assert manifest["shares"] == {"shipped": shipped_shares,
                                      "chosen": mixture["chosen_weights"]}


def test_select_moves_a_stale_mixtures_shortfall(shipped: tuple[RunConfig, dict],
                                                 tmp_path: Path) -> None:
    """A mixture planned without the filter asks code for more than it has: select keeps
    all of code and hands the rest to books and web by their weights."""
    cfg, _ = shipped
    e = _tokens(cfg, True)["code"]
    stale = tmp_path / "stale.json"
    stale.write_text(json.dumps({"weights": {"books": 0.25, "code": 0.5, "web": 0.25},
                                 "total_tokens": 4 * e}))
    select = cfg.select.model_copy(update={"mixture_file": stale})
    summary = run_selection(select, sorted((cfg.run_dir / "scored").glob("part-*.parquet")),
                            tmp_path / "sel", progress=False)
    quotas = summary["quotas"]
    assert quotas["requested_tokens"] == {"books": e, "code": 2 * e, "web": e}
    # code keeps its e tokens; its missing e split 0.25 : 0.25 (an odd token to books,
    # first by name)
    assert quotas["budget_tokens"] == {"books": e + e // 2 + e % 2, "code": e,
                                       "web": e + e // 2}
    assert summary["warnings"] == [
        f"domain 'code': budget {2 * e} tokens but only {e} eligible; its {e} missing "
        "tokens go to the other domains by their mixture weights"]
    kept = {d: x["tokens_after"] for d, x in summary["domains"].items()}
    assert summary["shares"] == {"shipped": rounded_shares(kept),
                                 "chosen": {"books": 0.25, "code": 0.5, "web": 0.25},
                                 "mixture": {"books": 0.25, "code": 0.5, "web": 0.25}}
    assert kept["code"] == e and abs(kept["books"] - 1.5 * e) < 40   # less than a document
