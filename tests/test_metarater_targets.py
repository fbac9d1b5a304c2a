"""Meta-rater targets: each kind read, split and scored as documented; score directions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from metamix.base.errors import UserError
from metamix.config import RunConfig
from metamix.mixtures.metarater.config import MetaraterConfig
from metamix.mixtures.metarater.evaluation import evaluation_docs
from metamix.mixtures.metarater.plan import resolve_directions
from metamix.mixtures.metarater.targets import half_of, objective, target_values
from metamix.mixtures.proxies.base import ValidationSet, losses_from_logprobs
from metamix.mixtures.proxies.evalsets import EvalDoc, build_eval_cache
from metamix.mixtures.proxies.synthetic import make_tokenizer
from metamix.scorers.registry import load_builtin


def run_config(tmp_path: Path) -> RunConfig:
    return RunConfig.model_validate({"run": "t", "out_dir": str(tmp_path / "out"),
                                     "input": {"paths": ["unused"]},
                                     "base_dir": str(tmp_path)})


def test_every_kind_becomes_documents_in_both_halves(tmp_path: Path) -> None:
    pq.write_table(pa.table({"id": [f"r{i}" for i in range(20)],
                             "text": [f"reference text number {i}" for i in range(20)]}),
                   tmp_path / "ref.parquet")
    with open(tmp_path / "items.jsonl", "w") as fh:
        for i in range(20):
            fh.write(json.dumps({"context": f"context {i}", "choices": ["wrong", f"right {i}"],
                                 "answer": 1}) + "\n")
    valid = tmp_path / "valid.parquet"
    pq.write_table(pa.table({"id": [f"v{i}" for i in range(10)],
                             "text": [f"validation {i}" for i in range(10)]}), valid)
    mcfg = MetaraterConfig(targets=[
        {"name": "ref", "kind": "text", "input": {"paths": ["ref.parquet"]}},
        {"name": "items", "kind": "choice", "path": "items.jsonl"},
        {"name": "validation", "kind": "validation", "weight": 0}])
    docs = evaluation_docs(run_config(tmp_path), mcfg.targets, [valid], 0.5)
    assert len(docs) == 50
    groups = {d.group for d in docs}
    assert groups == {f"{t}/{h}" for t in ("ref", "items", "validation")
                      for h in ("fit", "report")}
    item = next(d for d in docs if d.group.startswith("items/"))
    assert item.context.startswith("context ") and item.text.startswith(" right ")
    # the split is a fixed function of the target name and item id
    ref3 = next(d for d in docs if d.id == "r3")
    assert ref3.group == f"ref/{half_of('ref', 'r3')}"


@pytest.mark.parametrize(("line", "message"), [
    ('{"context": "c", "choices": ["a"], "answer": 0}', "at least two"),
    ('{"context": "c", "choices": ["a", "b"], "answer": 2}', "index into"),
    ('{"context": "", "choices": ["a", "b"], "answer": 0}', "context"),
    ("not json", "not valid JSON"),
])
def test_bad_choice_items_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    good = json.dumps({"context": "c", "choices": ["a", "b"], "answer": 0, "id": "x"})
    (tmp_path / "items.jsonl").write_text(good + "\n" + line + "\n")
    mcfg = MetaraterConfig(targets=[{"name": "items", "kind": "choice", "path": "items.jsonl"}])
    with pytest.raises(UserError, match=rf"items\.jsonl:2: .*{message}"):
        evaluation_docs(run_config(tmp_path), mcfg.targets, [], 0.5)


def test_cloze_loss_is_the_mean_per_token_nll_of_the_answers(tmp_path: Path) -> None:
    texts = ["alpha beta gamma delta", "one two three four five six"]
    tok = make_tokenizer(tmp_path / "tok.json", texts * 20, vocab_size=280)
    docs = [EvalDoc("a", "c/fit", " gamma delta", "alpha beta"),
            EvalDoc("b", "c/fit", " five six", "one two three four"),
            EvalDoc("t", "t/fit", "one two three")]
    cache = build_eval_cache(docs, tok, tmp_path / "cache")
    val = ValidationSet(str(cache)).load()
    # canonical order: by (group, id); weights 0 on the context, 1/len on the answer
    rng = np.random.default_rng(0)
    logprobs = -rng.uniform(0.5, 3.0, size=val.n_tokens)
    losses, _ = losses_from_logprobs(val, logprobs)
    expected = []
    for i in range(len(val.offsets) - 1):
        if val.doc_domains[i] != "c/fit":
            continue
        span = slice(val.offsets[i], val.offsets[i + 1])
        w = val.token_weights[span]
        answer = w > 0
        assert w[answer].sum() == pytest.approx(1.0) and (~answer).sum() > 0
        expected.append(-logprobs[span][answer].mean())
    assert losses["c/fit"] == pytest.approx(np.mean(expected))
    t_span = slice(val.offsets[-2], val.offsets[-1])
    assert losses["t/fit"] == pytest.approx(-logprobs[t_span].mean())
    assert build_eval_cache(docs, tok, tmp_path / "cache") == cache   # cached


def test_objective_weights_targets_and_reads_external_metrics() -> None:
    mcfg = MetaraterConfig(targets=[
        {"name": "a", "kind": "validation", "weight": 1.0},
        {"name": "acc", "kind": "metric", "metric": "mmlu", "higher_is_better": True,
         "weight": 3.0}])
    values = target_values(mcfg.targets, {"a/fit": 4.0, "a/report": 5.0},
                           {"mmlu/fit": 0.25, "mmlu/report": 0.5}, "report")
    assert values == {"a": 5.0, "acc": -0.5}
    assert objective(mcfg.targets, values) == pytest.approx((5.0 - 3 * 0.5) / 4)
    with pytest.raises(UserError, match="mmlu/fit"):
        target_values(mcfg.targets, {"a/fit": 4.0}, {}, "fit")


def test_every_builtin_numeric_column_declares_a_direction() -> None:
    undeclared = []
    for name, cls in load_builtin().items():
        scorer = cls(model_dirs={"professionalism": "x"}) if name == "prrc_transformers" \
            else cls()
        directions = scorer.directions()
        for field in scorer.output_schema():
            numeric = pa.types.is_integer(field.type) or pa.types.is_floating(field.type) \
                or pa.types.is_boolean(field.type)
            if numeric and directions.get(field.name) not in ("higher", "lower", "neutral"):
                undeclared.append(field.name)
    assert undeclared == []
    from metamix.scorers.c4 import C4QualityScorer

    assert C4QualityScorer().directions()["c4_has_curly_bracket"] == "lower"
    assert C4QualityScorer().directions()["c4_num_sentences"] == "neutral"


def test_config_overrides_declared_directions_and_missing_ones_fail() -> None:
    declared = {"a": "higher", "b": "neutral"}
    assert resolve_directions(["a", "b"], declared, {"b": "lower"}) == {"a": "higher",
                                                                         "b": "lower"}
    with pytest.raises(UserError, match="no direction declared for score column"):
        resolve_directions(["a", "c"], declared, {})
