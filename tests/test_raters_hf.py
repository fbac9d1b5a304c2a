"""The ``prrc_transformers`` scorer on a tiny random BERT built locally (no hub access)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metamix.scorers.prrc.raters_hf import PRRCTransformersScorer, load_classifier

SENTENCES = ["The committee met on Tuesday to review the annual budget.",
             "Home | About | Contact | Login", "Water boils at a lower temperature at altitude.",
             "def f(x): return x + 1", "Ünïcödé text, emoji 🙂 and 中文 characters."]


@pytest.fixture(scope="module", params=[True, False], ids=["cls_sep", "bare"])
def tiny_rater(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """A 1-layer BERT; ``bare`` has a tokenizer that adds no [CLS]/[SEP], so an empty text
    tokenizes to nothing — the scorer must still cope."""
    with_specials = request.param
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny_rater")
    wordpiece = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    wordpiece.normalizer = normalizers.BertNormalizer(lowercase=True)
    wordpiece.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    wordpiece.train_from_iterator(SENTENCES * 4, trainers.WordPieceTrainer(
        vocab_size=200, special_tokens=specials))
    if with_specials:
        wordpiece.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=wordpiece, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]", model_max_length=64)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=64,
                        num_labels=6)
    model = BertForSequenceClassification(config)
    with torch.no_grad():  # spread the logits so the expected value is not always ~2.5
        model.classifier.weight.mul_(50.0)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_expected_value_matches_a_manual_softmax(tiny_rater: Path) -> None:
    import torch

    scorer = PRRCTransformersScorer(model_dirs={"reasoning": str(tiny_rater)}, max_length=32,
                                    batch_size=2, device="cpu")
    out = scorer.score(pa.record_batch({"text": SENTENCES + [None]}))
    assert list(out) == scorer.output_schema().names == ["prrc_hf_reasoning"]
    values = out["prrc_hf_reasoning"].to_pylist()
    assert values[-1] is None
    tokenizer, model = load_classifier(str(tiny_rater), "cpu")
    with torch.inference_mode():
        for text, value in zip(SENTENCES, values, strict=False):
            enc = tokenizer([text], truncation=True, max_length=32, return_tensors="pt")
            probs = torch.softmax(model(**enc).logits[0], -1).numpy()
            assert value == pytest.approx(float(probs @ np.arange(6)), abs=1e-4)
    assert np.ptp(values[:-1]) > 0  # the scores depend on the text


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.text(max_size=200), st.just(""), st.none(),
                          st.text(min_size=1, max_size=3).map(lambda s: s * 10_000)),
                min_size=1, max_size=5))
def test_transformers_scorer_survives_any_text(tiny_rater: Path, texts: list[str | None]) -> None:
    scorer = PRRCTransformersScorer(model_dirs={"cleanliness": str(tiny_rater)},
                                    max_length=48, batch_size=3, excerpt_chars=2000)
    values = scorer.score(pa.record_batch({"text": pa.array(texts, pa.string())}))
    for text, value in zip(texts, values["prrc_hf_cleanliness"].to_pylist(), strict=True):
        assert (value is None) == (text is None)
        assert value is None or 0.0 <= value <= 5.0


def test_bad_params_are_rejected() -> None:
    with pytest.raises(ValueError):
        PRRCTransformersScorer(model_dirs={})
    with pytest.raises(ValueError):
        PRRCTransformersScorer(model_dirs={"bad name": "x"})
