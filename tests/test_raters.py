"""PRRC raters: expected values, metrics, training determinism, the shipped models."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metamix.scorers.prrc.raters import PRRCScorer, read_manifest
from metamix.scorers.prrc.raters_common import DEFAULT_MODEL_DIR, expected_value, fasttext_text
from metamix.scorers.prrc.raters_embedding import EmbeddingParams, LinearHead, train_head
from metamix.scorers.prrc.raters_fasttext import FastTextParams, FastTextRater, train_fasttext
from metamix.scorers.prrc.raters_metrics import macro_f1, spearman, within_one_accuracy
from metamix.scorers.prrc.train_rater import TrainRaterConfig, train_raters

CLEAN = ("The committee met on Tuesday to review the annual budget. Members discussed the "
         "costs of maintaining the old library building, which was built in 1903. After a "
         "long debate, they agreed to fund repairs to the roof and the heating system, "
         "because the inspectors had found that water was damaging the archive.")
NAV = "Home | About | Products | Contact | Login | Sign up | © 2024 | Privacy | Terms | » Next"

GOOD = [CLEAN, "Water boils at lower temperatures at altitude because air pressure is lower.",
        "The proof follows by induction: the base case holds, and each step preserves it."]
BAD = [NAV, "click here click here buy now!!! $$$ free free free",
       "lorem ipsum | menu | share | tweet | like"]


def tiny_set() -> tuple[list[str], list[int]]:
    texts = [f"{t} variant {i}" for i in range(8) for t in GOOD + BAD]
    labels = [4, 4, 5, 0, 1, 1] * 8
    return texts, labels


def test_expected_value_hand_checked() -> None:
    p = np.array([[0.0, 0.0, 0.5, 0.5, 0.0, 0.0],    # 2.5
                  [0.1, 0.1, 0.1, 0.1, 0.1, 0.5],    # (0+1+2+3+4)*0.1 + 2.5 = 3.5
                  [2.0, 0.0, 0.0, 0.0, 0.0, 2.0],    # unnormalized → renormalized: 2.5
                  [0.0] * 6])                        # no mass → mean of classes 2.5
    assert expected_value(p) == pytest.approx([2.5, 3.5, 2.5, 2.5])
    assert expected_value(np.array([[0.25, 0.75]]), classes=[1, 5]) == pytest.approx([4.0])


def test_metrics_on_a_hand_example() -> None:
    assert spearman([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    assert spearman([0.1, 0.2, 0.2, 0.9], [0, 1, 1, 3]) == pytest.approx(1.0)  # ties
    assert math.isnan(spearman([1, 1, 1], [0, 1, 2]))
    # rounded predictions: 0, 2, 3, 5 (2.5 rounds up) vs labels 0, 1, 1, 3
    predicted, labels = [0.2, 1.6, 2.5, 4.7], [0, 1, 1, 3]
    assert within_one_accuracy(predicted, labels) == pytest.approx(0.5)
    # classes {0,1,2,3,5}: F1(0)=1, F1(1)=0, F1(2)=0, F1(3)=0, F1(5)=0 → 0.2
    assert macro_f1(predicted, labels) == pytest.approx(0.2)
    assert macro_f1([1, 1, 2, 2], [1, 2, 2, 2]) == pytest.approx((2 / 3 + 0.8) / 2)


def test_fasttext_text_is_one_normalized_line() -> None:
    assert fasttext_text("Hello,\nWorld!\r\n\tOK") == "hello , world ! ok"


def test_fasttext_training_is_deterministic_and_learns(tmp_path: Path) -> None:
    texts, labels = tiny_set()
    params = FastTextParams(epoch=30, lr=0.5, seed=3)
    a = FastTextRater(train_fasttext(texts, labels, tmp_path / "a" / "m", params))
    b = FastTextRater(train_fasttext(texts, labels, tmp_path / "b" / "m", params))
    probe = GOOD + BAD + ["", "something unseen"]
    np.testing.assert_array_equal(a.probabilities(probe), b.probabilities(probe))
    scores = a.score(probe)
    assert scores[:3].min() > scores[3:6].max()
    assert ((scores >= 0) & (scores <= 5)).all()


def test_embedding_head_is_deterministic_and_round_trips(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 2, 5], 20)
    vectors = rng.normal(size=(60, 8)) + labels[:, None]
    params = EmbeddingParams(c_grid=(0.1, 1.0), cv_folds=3)
    head = train_head(vectors, labels, params)
    again = train_head(vectors, labels, params)
    np.testing.assert_array_equal(head.coef, again.coef)
    loaded = LinearHead.load(head.save(tmp_path / "h.json"))
    np.testing.assert_allclose(loaded.score(vectors), head.score(vectors))
    probs = loaded.probabilities(vectors)
    assert probs[:, [1, 3, 4]].sum() == 0 and np.allclose(probs.sum(axis=1), 1)
    assert spearman(loaded.score(vectors), labels) > 0.8


def _write_tiny_annotations(root: Path) -> Path:
    import hashlib

    import pyarrow.parquet as pq

    texts, labels = tiny_set()
    seeds, rows = [], []
    for i, (text, label) in enumerate(zip(texts, labels, strict=True)):
        sha = hashlib.sha256(text.encode()).hexdigest()
        seeds.append({"id": f"d{i}", "domain": "web", "excerpt": text, "excerpt_sha256": sha})
        rows.append({"id": f"d{i}", "domain": "web", "excerpt_sha256": sha,
                     "professionalism": label, "readability": label, "reasoning": label,
                     "cleanliness": label, "rubric_version": 1,
                     "split": "test" if i % 4 == 0 else "train"})
    (root / "seed_batch_1.jsonl").write_text("".join(json.dumps(s) + "\n" for s in seeds))
    pq.write_table(pa.Table.from_pylist(rows), root / "seed.parquet")
    return root / "seed.parquet"


def test_train_raters_end_to_end_then_score(tmp_path: Path) -> None:
    labels = _write_tiny_annotations(tmp_path)
    cfg = TrainRaterConfig(labels=str(labels), excerpts_dir=str(tmp_path),
                           out_dir=str(tmp_path / "models"),
                           fasttext=FastTextParams(epoch=30, lr=0.5),
                           embedding=EmbeddingParams(c_grid=(1.0,)))
    report = train_raters(cfg)
    assert report["n_test"] == 12 and report["n_train"] == 36
    for dim, by_kind in report["metrics"].items():
        assert set(by_kind) == {"fasttext", "embedding"}
        assert report["defaults"][dim] in by_kind
    manifest = read_manifest(tmp_path / "models")
    assert json.loads((tmp_path / "models" / "evaluation.json").read_text())["defaults"] == \
        manifest["defaults"]
    for kind in ("fasttext", "embedding"):
        scorer = PRRCScorer(model_dir=str(tmp_path / "models"), kinds={"reasoning": kind},
                            dimensions=("reasoning",))
        out = scorer.score(pa.record_batch({"text": [CLEAN, NAV, None]}))
        values = out["prrc_reasoning"].to_pylist()
        assert values[2] is None and values[0] > values[1], kind


# --- the shipped models -------------------------------------------------------------------

def test_shipped_models_are_small_and_complete() -> None:
    manifest = read_manifest(DEFAULT_MODEL_DIR)
    for by_dim in manifest["files"].values():
        for relative in by_dim.values():
            assert (DEFAULT_MODEL_DIR / relative).stat().st_size <= 5_000_000
    evaluation = json.loads((DEFAULT_MODEL_DIR / "evaluation.json").read_text())
    assert evaluation["defaults"] == manifest["defaults"]


@pytest.mark.parametrize("kind", ["fasttext", "embedding"])
def test_shipped_raters_prefer_clean_prose_to_a_menu(kind: str) -> None:
    """With both shipped kinds, cleanliness separates these by > 1 point and readability
    and reasoning rank them the right way round. Professionalism is not asserted: the
    seed labels rate meeting-minute prose low, and the embedding rater ties the two."""
    dims = ("readability", "reasoning", "cleanliness")
    scorer = PRRCScorer(kinds=dict.fromkeys(dims, kind), dimensions=dims)
    out = scorer.score(pa.record_batch({"text": [CLEAN, NAV]}))
    assert list(out) == [f"prrc_{d}" for d in dims]
    margins = {"prrc_readability": 0.1, "prrc_reasoning": 0.1, "prrc_cleanliness": 0.8}
    for column, values in out.items():
        clean, nav = values.to_pylist()
        assert clean > nav + margins[column], (kind, column, clean, nav)


def test_scorer_schema_matches_output_and_pickles() -> None:
    import pickle

    scorer = pickle.loads(pickle.dumps(PRRCScorer()))
    out = scorer.score(pa.record_batch({"text": pa.array([], pa.string())}))
    assert list(out) == scorer.output_schema().names
    assert all(a.type == pa.float32() and len(a) == 0 for a in out.values())
    assert scorer.params()["dimensions"] == ("professionalism", "readability", "reasoning",
                                             "cleanliness")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.text(max_size=300), st.just(""), st.none(),
                          st.text(min_size=1, max_size=5).map(lambda s: s * 20_000)),
                min_size=1, max_size=6))
def test_prrc_scorer_survives_any_text(texts: list[str | None]) -> None:
    out = PRRCScorer().score(pa.record_batch({"text": pa.array(texts, pa.string())}))
    for values in out.values():
        assert len(values) == len(texts)
        for text, value in zip(texts, values.to_pylist(), strict=True):
            assert (value is None) == (text is None)
            assert value is None or 0.0 <= value <= 5.0
