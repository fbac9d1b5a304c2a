"""The fast BPE encoder gives exactly the ids of Hugging Face ``tokenizers``: on the bundled
corpus, on random unicode, on freshly trained tokenizers; and falls back when it cannot."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer

from metamix.base.bpe import BpeEncoder, load_encoder
from metamix.pipeline.config import TokenizerConfig
from metamix.pipeline.tokenizer import train_tokenizer
from tests.conftest import PROSE, SAMPLE

# A copy of the demo run's tokenizer (the n-gram scorer's), trained on the bundled corpus.
DEMO_TOKENIZER = (Path(__file__).resolve().parent.parent / "scorers" / "model_based"
                  / "models" / "ngram_tokenizer.json")


def reference_ids(path: Path, texts: list[str]) -> list[list[int]]:
    tok = Tokenizer.from_file(str(path))
    return [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]


def as_lists(encoder: BpeEncoder, texts: list[str]) -> list[list[int]]:
    return [ids.tolist() for ids in encoder.encode_lists(texts)]


@pytest.fixture(scope="module")
def demo() -> BpeEncoder:
    return load_encoder(DEMO_TOKENIZER)


def test_fast_backend_matches_tokenizers_on_the_bundled_corpus(demo: BpeEncoder) -> None:
    shards = sorted(SAMPLE.glob("*/*.parquet"))
    if not shards:
        pytest.skip("bundled corpus data/sample is missing")
    assert demo.backend == "fastokens"
    texts: list[str] = []
    for shard in shards:  # every domain and source, up to 40 documents per file
        texts += pq.read_table(shard, columns=["text"]).column("text").to_pylist()[:40]
    assert len(texts) > 500
    assert as_lists(demo, texts) == reference_ids(DEMO_TOKENIZER, texts)
    counts = demo.count(texts)
    assert counts.dtype == np.int64 and counts.tolist() == [
        len(ids) for ids in reference_ids(DEMO_TOKENIZER, texts)]


# Special tokens, contractions, whitespace runs and digits are where implementations differ.
PIECES = st.sampled_from(["<|endoftext|>", "<|pad|>", "<|", "|>", " ", "  ", "\n", "\n\n",
                          "\t", "\r\n", "'s", "'ll", "'S", " the", "123", "\u00a0", "\u3000"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.text(max_size=12), PIECES), max_size=25).map("".join))
def test_fast_backend_matches_tokenizers_on_random_unicode(demo: BpeEncoder, text: str) -> None:
    assert as_lists(demo, [text, text + text]) == reference_ids(DEMO_TOKENIZER,
                                                                [text, text + text])


def test_a_freshly_trained_tokenizer_is_encoded_identically(tmp_path: Path) -> None:
    texts = [PROSE, PROSE.upper(), "def f(x):\n    return x ** 2\n", "Grüße aus Köln, 2024!"]
    tok = train_tokenizer(texts * 20, TokenizerConfig(vocab_size=400, sample_docs=100))
    path = tmp_path / "tok.json"
    tok.save(str(path))
    encoder = load_encoder(path)
    assert encoder.backend == "fastokens" and encoder.dtype == np.uint16
    probe = [*texts, PROSE[::-1], "<|endoftext|>" + PROSE, ""]
    assert as_lists(encoder, probe) == reference_ids(path, probe)


def test_flat_layout_and_empty_inputs(demo: BpeEncoder) -> None:
    ids, offsets = demo.encode(["", "a b", ""])
    assert offsets.tolist() == [0, 0, len(ids), len(ids)]
    ids, offsets = demo.encode([])
    assert len(ids) == 0 and offsets.tolist() == [0]


def test_reference_backend_is_forced_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METAMIX_BPE", "tokenizers")
    encoder = load_encoder(DEMO_TOKENIZER)
    assert encoder.backend == "tokenizers"
    assert as_lists(encoder, [PROSE, ""]) == reference_ids(DEMO_TOKENIZER, [PROSE, ""])


class _OffByOne:
    """A stand-in fast backend that gets every id wrong."""

    def __init__(self, real: object) -> None:
        self.real = real

    def encode_batch_flat(self, texts: list[str]) -> tuple[bytes, bytes]:
        flat, offsets = self.real.encode_batch_flat(texts)  # type: ignore[attr-defined]
        return (np.frombuffer(flat, np.uint32) + 1).tobytes(), offsets


def test_a_fast_backend_that_disagrees_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    import metamix.base.bpe as bpe

    real_load = bpe._load_fast
    monkeypatch.setattr(bpe, "_load_fast", lambda path: _OffByOne(real_load(path)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        encoder = BpeEncoder(str(DEMO_TOKENIZER))
    assert encoder.backend == "tokenizers"
    assert any("other ids" in str(w.message) for w in caught)
    assert as_lists(encoder, [PROSE]) == reference_ids(DEMO_TOKENIZER, [PROSE])


def test_a_file_rewritten_in_place_is_loaded_again(tmp_path: Path) -> None:
    path = tmp_path / "tok.json"
    cfg = TokenizerConfig(vocab_size=300, sample_docs=100)
    train_tokenizer([PROSE] * 10, cfg).save(str(path))
    first = load_encoder(path)
    assert load_encoder(path) is first
    train_tokenizer(["zzz yyy xxx " * 50] * 10, cfg).save(str(path))
    second = load_encoder(path)
    assert second is not first
    assert as_lists(second, ["zzz yyy"]) == reference_ids(path, ["zzz yyy"])


def _fresh_copy(tmp_path: Path, name: str = "tok.json") -> Path:
    path = tmp_path / name
    path.write_bytes(DEMO_TOKENIZER.read_bytes())
    return path


def test_a_passed_check_is_recorded_and_spares_the_next_load(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each worker of each command loads the run's tokenizer: the check against
    ``tokenizers`` runs once per file and library versions, then the record vouches."""
    import json
    from importlib.metadata import version

    from metamix.base.hashing import file_sha256

    path, record = _fresh_copy(tmp_path), tmp_path / "tok.json.check"
    first = BpeEncoder(str(path), check_record=str(record))
    assert first.backend == "fastokens"
    assert json.loads(record.read_text()) == {
        "tokenizer_sha256": file_sha256(path), "fastokens": version("fastokens"),
        "tokenizers": version("tokenizers"), "vocab_size": first.vocab_size}

    def no_check(self: BpeEncoder) -> bool:
        raise AssertionError("checked again")

    monkeypatch.setattr(BpeEncoder, "_matches_reference", no_check)
    second = BpeEncoder(str(path), check_record=str(record))
    assert second.backend == "fastokens" and second.vocab_size == first.vocab_size
    assert second._reference is None   # not even loaded
    assert as_lists(second, [PROSE, ""]) == reference_ids(path, [PROSE, ""])


@pytest.mark.parametrize("spoil", ["other file", "other version", "garbage", "no size"])
def test_a_record_that_does_not_hold_means_checking_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spoil: str) -> None:
    import json

    path, record = _fresh_copy(tmp_path), tmp_path / "tok.json.check"
    BpeEncoder(str(path), check_record=str(record))
    data = json.loads(record.read_text())
    if spoil == "other file":
        data["tokenizer_sha256"] = "0" * 64
    elif spoil == "other version":
        data["fastokens"] = "0.0.1"
    elif spoil == "no size":
        del data["vocab_size"]
    record.write_text("{not json" if spoil == "garbage" else json.dumps(data))
    checks = []
    real = BpeEncoder._matches_reference
    monkeypatch.setattr(BpeEncoder, "_matches_reference",
                        lambda self: checks.append(1) or real(self))
    encoder = BpeEncoder(str(path), check_record=str(record))
    assert checks == [1] and encoder.backend == "fastokens"
    assert json.loads(record.read_text())["vocab_size"] == encoder.vocab_size  # rewritten


def test_a_failed_check_is_never_recorded(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import metamix.base.bpe as bpe

    path, record = _fresh_copy(tmp_path), tmp_path / "tok.json.check"
    real_load = bpe._load_fast
    monkeypatch.setattr(bpe, "_load_fast", lambda p: _OffByOne(real_load(p)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        encoder = BpeEncoder(str(path), check_record=str(record))
    assert encoder.backend == "tokenizers" and not record.exists()
