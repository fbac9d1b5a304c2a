"""Proxy trainers end to end on a tiny synthetic corpus: cache, ngram, gpt, external."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from metamix.mixtures.proxies import (
    ProxyError,
    TrainingData,
    ValidationSet,
    build_token_cache,
    load_token_cache,
    make_trainer,
)
from metamix.mixtures.proxies.synthetic import corpus_texts, make_corpus, make_tokenizer


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("proxy-corpus")
    paths = make_corpus(root, n_docs=400, n_valid=30)
    tok = make_tokenizer(root / "tokenizer.json", corpus_texts(paths["scored"]))
    train = build_token_cache(paths["scored"], tok, root / "cache")
    valid = build_token_cache(paths["validation"], tok, root / "cache")
    return {"train": str(train), "valid": str(valid), "root": str(root), "tok": str(tok)}


def test_token_cache_is_reused_and_keeps_row_order(corpus: dict[str, str]) -> None:
    root = Path(corpus["root"])
    shards = sorted((root / "scored").glob("*.parquet"))
    again = build_token_cache(shards, corpus["tok"], root / "cache")
    assert str(again) == corpus["train"]
    cached = load_token_cache(corpus["train"])
    ids = [i for p in shards for i in pq.read_table(p, columns=["id"]).column(0).to_pylist()]
    assert list(cached.ids) == ids and cached.n_docs == 400
    assert cached.offsets[-1] == len(cached.tokens) > 400
    other = build_token_cache(shards[:1], corpus["tok"], root / "cache")
    assert other != again


def ngram_loss(corpus: dict[str, str], budget: int | None, seed: int = 0, **kw: object) -> float:
    data = TrainingData(corpus["train"], token_budget=budget, seed=seed)
    return make_trainer("ngram", kw).fit_evaluate(data, ValidationSet(corpus["valid"])).mean_loss


def test_ngram_loss_decreases_with_more_data(corpus: dict[str, str]) -> None:
    losses = [ngram_loss(corpus, b) for b in (500, 4000, 30000)]
    assert losses[0] > losses[1] > losses[2]


def test_ngram_seed_changes_subset_only_under_a_budget(corpus: dict[str, str]) -> None:
    assert ngram_loss(corpus, None, seed=1) == ngram_loss(corpus, None, seed=2)
    assert ngram_loss(corpus, 5000, seed=1) != ngram_loss(corpus, 5000, seed=2)


def test_result_losses_are_token_weighted_and_logprobs_align(corpus: dict[str, str]) -> None:
    val = ValidationSet(corpus["valid"])
    data = TrainingData(corpus["train"], doc_indices=np.arange(0, 400, 2), token_budget=8000)
    result = make_trainer("ngram").fit_evaluate(data, val, return_logprobs=True)
    tokens = val.load()
    assert result.token_logprobs is not None and result.token_logprobs.shape == (tokens.n_tokens,)
    assert result.mean_loss == pytest.approx(-result.token_logprobs.mean())
    counts = np.bincount(tokens.token_domains)
    weighted = sum(result.losses[d] * counts[i] for i, d in enumerate(tokens.domain_names))
    assert result.mean_loss == pytest.approx(weighted / counts.sum())
    assert set(result.losses) == {"web", "code"} and result.n_train_tokens == 8000
    assert list(tokens.doc_domains) == sorted(tokens.doc_domains)


def test_step_law_values_by_hand() -> None:
    from metamix.mixtures.proxies.gpt import step_law_batch_tokens, step_law_lr

    # 1.79 * 10**(-6*0.713) * 10**(9*0.307) = 1.79 * 10**-1.515; 0.58 * 10**(9*0.571)
    assert step_law_lr(10**6, 10**9) == pytest.approx(1.79 * 0.0305492, rel=1e-5)
    assert step_law_batch_tokens(10**9) == pytest.approx(0.58 * 137721.0, rel=1e-5)


GPT = {"d_model": 32, "n_layers": 1, "n_heads": 2, "seq_len": 32, "log_every": 5}


def test_gpt_tiny_is_deterministic_and_learns(corpus: dict[str, str]) -> None:
    val = ValidationSet(corpus["valid"])
    data = TrainingData(corpus["train"], token_budget=20000, seed=3)
    first = make_trainer("gpt", GPT).fit_evaluate(data, val, return_logprobs=True)
    second = make_trainer("gpt", GPT).fit_evaluate(data, val)
    assert first.mean_loss == second.mean_loss and first.losses == second.losses
    assert first.curve is not None and len(first.curve) >= 3
    assert first.curve[-1][1] < first.curve[0][1]
    assert first.mean_loss < np.log(300)            # better than uniform over the vocab
    assert first.token_logprobs is not None
    ngram = make_trainer("ngram").fit_evaluate(data, val, return_logprobs=True)
    assert ngram.token_logprobs is not None
    assert first.token_logprobs.shape == ngram.token_logprobs.shape
    assert first.info["steps"] >= 5 and first.info["non_embedding_params"] > 0


def test_gpt_overrides_step_law(corpus: dict[str, str]) -> None:
    data = TrainingData(corpus["train"], token_budget=4000)
    params = {**GPT, "lr": 1e-3, "batch_tokens": 64, "max_steps": 3}
    result = make_trainer("gpt", params).fit_evaluate(data, ValidationSet(corpus["valid"]))
    assert result.info["lr"] == 1e-3 and result.info["batch_size"] == 2
    assert result.info["steps"] == 3


def script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "trainer.py"
    path.write_text("import json, sys\nm = json.load(open(sys.argv[1]))\n" + body)
    return f"{sys.executable} {path} {{manifest}}"


def test_external_trainer_protocol(corpus: dict[str, str], tmp_path: Path) -> None:
    cmd = script(tmp_path, (
        "import pyarrow.parquet as pq\n"
        "n = sum(pq.read_table(m['train_files'][0]).column('n_tokens_used').to_pylist())\n"
        "assert n == m['n_train_tokens'] <= m['token_budget']\n"
        "losses = {d: 1.0 + i for i, d in enumerate(m['validation_domains'])}\n"
        "json.dump({'losses': losses, 'mean_loss': 1.25}, open(m['output'], 'w'))\n"))
    data = TrainingData(corpus["train"], token_budget=3000, seed=1)
    result = make_trainer("external", {"command": cmd}).fit_evaluate(
        data, ValidationSet(corpus["valid"]), work_dir=tmp_path / "run")
    assert result.losses == {"code": 1.0, "web": 2.0} and result.mean_loss == 1.25
    assert result.n_train_tokens == 3000
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["seed"] == 1 and manifest["tokenizer"] == corpus["tok"]


@pytest.mark.parametrize(("body", "message"), [
    ("sys.stderr.write('CUDA out of memory\\n'); sys.exit(3)", "status 3: CUDA out of memory"),
    ("open(m['output'], 'w').write('{not json')", "not valid JSON"),
    ("pass", "wrote no result file"),
    ("json.dump({'losses': {'web': 1.0}, 'mean_loss': 1}, open(m['output'], 'w'))",
     "no loss for domains ['code']"),
    ("json.dump({'losses': {'web': 1, 'code': float('nan')}, 'mean_loss': 1},"
     " open(m['output'], 'w'))", "non-finite values: ['code']"),
    ("import time; time.sleep(30)", "timed out"),
])
def test_external_trainer_failures_are_clear(corpus: dict[str, str], tmp_path: Path, body: str,
                                             message: str) -> None:
    trainer = make_trainer("external", {"command": script(tmp_path, body), "timeout_s": 3.0})
    with pytest.raises(ProxyError) as err:
        trainer.fit_evaluate(TrainingData(corpus["train"], token_budget=500),
                             ValidationSet(corpus["valid"]), work_dir=tmp_path / "run")
    assert message in str(err.value)
