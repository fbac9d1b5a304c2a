"""One encoding pass per document: the score stage's ids feed ``n_tokens``, the n-gram
scorer (when its tokenizer is the run's) and the proxy trainers' token cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rich.console import Console
from tokenizers import Tokenizer

import metamix.base.bpe as bpe
from metamix.config import load_config
from metamix.mixtures.proxies import build_token_cache, load_token_cache
from metamix.pipeline.runner import run_score
from metamix.pipeline.stages import CountTokens
from metamix.pipeline.tokenizer import read_token_ids, token_ids_path
from metamix.scorers.model_based.ngram_perplexity import NgramPerplexityScorer
from tests.conftest import PROSE, write_config, write_jsonl
from tests.test_bpe import DEMO_TOKENIZER

QUIET = Console(quiet=True)


@pytest.fixture(scope="module")
def scored_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("once")
    for split, n in (("train", 3), ("valid", 1)):
        (root / split).mkdir()
        for s in range(n):
            write_jsonl(root / split / f"{s}.jsonl", [
                {"id": f"{split}{s}-{i}", "text": f"{PROSE} Row {i}, part {s}. " * (1 + i % 4),
                 "domain": ["web", "books"][i % 2]} for i in range(120)])
    cfg_path = write_config(root / "c.yaml", run="once",
                            input={"paths": [str(root / "train" / "*.jsonl")]},
                            validation={"paths": [str(root / "valid" / "*.jsonl")]},
                            score={"batch_size": 50, "scorers": [{"name": "c4"}]})
    cfg = load_config(cfg_path)
    run_score(cfg, QUIET)
    return cfg.run_dir


def _shards(run_dir: Path, stage: str) -> list[Path]:
    return sorted((run_dir / stage).glob("part-*.parquet"))


@pytest.mark.parametrize("stage", ["scored", "validation"])
def test_score_stage_stores_each_rows_ids(scored_run: Path, stage: str) -> None:
    tok = Tokenizer.from_file(str(scored_run / "tokenizer.json"))
    sha = bpe_sha(scored_run)
    for shard in _shards(scored_run, stage):
        table = pq.read_table(shard)
        assert "__token_ids" not in table.column_names  # internal: never in the data file
        stored = read_token_ids(shard, sha)
        assert stored is not None
        ids, offsets = stored
        texts = table.column("text").to_pylist()
        expected = [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]
        assert [ids[offsets[i]:offsets[i + 1]].tolist() for i in range(len(texts))] == expected
        assert np.diff(offsets).tolist() == table.column("n_tokens").to_pylist()
        record = (scored_run / "_manifests" / stage / f"{shard.stem}.json").read_text()
        assert f"tokens/{stage}/{shard.stem}.arrow" in record  # checked on resume too


def test_the_encoder_check_is_recorded_in_the_cache_not_the_run(scored_run: Path) -> None:
    """The run's folder holds its outputs only (an object-store run has the same files);
    the passed check of the fast encoder is kept beside the cached tokenizer."""
    import json

    records = list((scored_run.parent / "_cache").glob("tokenizer-*.json.check"))
    assert len(records) == 1
    assert json.loads(records[0].read_text())["tokenizer_sha256"] == bpe_sha(scored_run)
    assert not list(scored_run.rglob("*.check"))


def bpe_sha(run_dir: Path) -> str:
    from metamix.base.hashing import file_sha256

    return file_sha256(run_dir / "tokenizer.json")


def test_stored_ids_are_ignored_for_another_tokenizer_or_changed_data(
        scored_run: Path, tmp_path: Path) -> None:
    shard = _shards(scored_run, "scored")[0]
    assert read_token_ids(shard, "0" * 64) is None
    copy = tmp_path / "run" / "scored" / shard.name
    copy.parent.mkdir(parents=True)
    (copy.parent.parent / "_manifests" / "scored").mkdir(parents=True)
    shutil.copyfile(shard, copy)
    token_ids_path(copy).parent.mkdir(parents=True)
    shutil.copyfile(token_ids_path(shard), token_ids_path(copy))
    assert read_token_ids(copy, bpe_sha(scored_run)) is None  # no record vouches for them
    record = f"_manifests/scored/{shard.stem}.json"
    shutil.copyfile(scored_run / record, copy.parent.parent / record)
    assert read_token_ids(copy, bpe_sha(scored_run)) is not None
    pq.write_table(pq.read_table(shard).slice(1), copy)  # the shard changed, the ids did not
    assert read_token_ids(copy, bpe_sha(scored_run)) is None


def test_token_cache_reads_the_stored_ids_instead_of_encoding(
        scored_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shards = _shards(scored_run, "scored")
    tok = scored_run / "tokenizer.json"
    # reference: the same files without stored ids, so the cache encodes them itself
    plain = tmp_path / "plain" / "scored"
    plain.mkdir(parents=True)
    for shard in shards:
        shutil.copyfile(shard, plain / shard.name)
    encoded = load_token_cache(str(build_token_cache(sorted(plain.glob("*.parquet")), tok,
                                                     tmp_path / "cache_a")))

    def no_encoding(self: bpe.BpeEncoder, texts: list[str]) -> None:
        raise AssertionError("the token cache encoded text it had ids for")

    monkeypatch.setattr(bpe.BpeEncoder, "encode", no_encoding)
    reused = load_token_cache(str(build_token_cache(shards, tok, tmp_path / "cache_b")))
    assert np.array_equal(reused.tokens, encoded.tokens)
    assert np.array_equal(reused.offsets, encoded.offsets)
    assert reused.ids.tolist() == encoded.ids.tolist()
    assert reused.domains.tolist() == encoded.domains.tolist()
    assert reused.tokens.dtype == encoded.tokens.dtype == np.uint16


def _batch(texts: list[str]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array(texts, pa.string())], names=["text"])


class _CountingEncoder:
    def __init__(self, real: bpe.BpeEncoder) -> None:
        self.real = real
        self.encoded: list[str] = []

    def encode_lists(self, texts: list[str]) -> list[np.ndarray]:
        self.encoded.extend(texts)
        return self.real.encode_lists(texts)


def test_ngram_scorer_reuses_ids_of_its_own_tokenizer() -> None:
    texts = [PROSE, "", "short text", PROSE * 3, "x" * 50 + " tail words"]
    plain = NgramPerplexityScorer(max_chars=len(PROSE) + 5)
    expected = plain.score(_batch(texts))

    shared = NgramPerplexityScorer(max_chars=len(PROSE) + 5)
    model, encoder, sha = shared._loaded()
    counting = _CountingEncoder(encoder)
    shared._cached_loaded = (model, counting, sha)
    with_ids = CountTokens(str(DEMO_TOKENIZER), keep_ids=True)(_batch(texts)).batch
    got = shared.score(with_ids)
    # only the document longer than max_chars is encoded again (its first max_chars chars)
    assert counting.encoded == [(PROSE * 3)[:len(PROSE) + 5]]
    for name, column in expected.items():
        np.testing.assert_array_equal(got[name].to_numpy(zero_copy_only=False),
                                      column.to_numpy(zero_copy_only=False), err_msg=name)


def test_ngram_scorer_encodes_itself_when_the_run_tokenizer_differs(tmp_path: Path) -> None:
    texts = [PROSE, "another document, not long"]
    other = tmp_path / "other.json"
    data = DEMO_TOKENIZER.read_text()
    other.write_text(data + "\n")  # same BPE, another file: not provably the same tokenizer
    scorer = NgramPerplexityScorer()
    model, encoder, sha = scorer._loaded()
    counting = _CountingEncoder(encoder)
    scorer._cached_loaded = (model, counting, sha)
    batch = CountTokens(str(other), keep_ids=True)(_batch(texts)).batch
    got = scorer.score(batch)
    assert counting.encoded == texts
    expected = NgramPerplexityScorer().score(_batch(texts))
    for name, column in expected.items():
        np.testing.assert_array_equal(got[name].to_numpy(zero_copy_only=False),
                                      column.to_numpy(zero_copy_only=False), err_msg=name)


def test_ngram_lookups_of_distinct_windows_equal_every_window_looked_up() -> None:
    from metamix.scorers.model_based.ngram_perplexity import _window_logprobs

    model, _, _ = NgramPerplexityScorer()._loaded()
    rng = np.random.default_rng(3)
    win = rng.integers(0, model.vocab_size, size=(4000, model.order))
    win[2000:] = win[:2000]  # every window twice
    win[::7, 0] = int(model.meta["pad_id"])
    expected = model.logprob(win)
    assert np.array_equal(_window_logprobs(model, win), expected)
    assert np.array_equal(_window_logprobs(model, win[:0]), expected[:0])


def test_token_ids_file_commits_only_when_finished(tmp_path: Path) -> None:
    from metamix.pipeline.tokenizer import TokenIdsFile

    data = tmp_path / "run" / "scored" / "part-00000.parquet"
    data.parent.mkdir(parents=True)
    pq.write_table(pa.table({"text": ["a b", "c"]}), data)
    batch = CountTokens(str(DEMO_TOKENIZER), keep_ids=True)(_batch(["a b", "c"])).batch
    with pytest.raises(RuntimeError), TokenIdsFile(data) as sink:
        sink.add(batch)
        raise RuntimeError("worker died mid-shard")
    assert not any(token_ids_path(data).parent.iterdir())  # no file, no temporary
    with TokenIdsFile(data) as sink:
        sink.add(batch.slice(0, 1))
        sink.add(batch.slice(1))
        assert sink.finish() == (token_ids_path(data),)
    from metamix.base.hashing import file_hash, file_sha256

    record = data.parent.parent / "_manifests" / "scored" / "part-00000.json"
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"outputs": {
        "scored/part-00000.parquet": file_hash(data),
        "tokens/scored/part-00000.arrow": file_hash(token_ids_path(data))}}))
    ids, offsets = read_token_ids(data, file_sha256(DEMO_TOKENIZER))
    assert offsets.tolist() == [0, *np.cumsum(batch.column("n_tokens").to_numpy()).tolist()]
    with TokenIdsFile(data) as sink:  # a rerun whose batches carry no ids leaves none
        sink.add(_batch(["a b"]))
        assert sink.finish() == ()
    assert not token_ids_path(data).exists()
