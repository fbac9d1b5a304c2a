"""PRRC raters: expected values, metrics, heads, training determinism, the shipped models."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from metamix.scorers.prrc.raters import PRRCScorer, read_manifest
from metamix.scorers.prrc.raters_common import (
    DEFAULT_MODEL_DIR,
    DIMENSIONS,
    expected_value,
    fasttext_text,
)
from metamix.scorers.prrc.raters_fasttext import FastTextParams, FastTextRater, train_fasttext
from metamix.scorers.prrc.raters_head import FeatureHead, HeadParams, fit_head
from metamix.scorers.prrc.raters_metrics import macro_f1, spearman, within_one_accuracy
from metamix.scorers.prrc.raters_text_stats import STAT_NAMES
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


def test_text_that_holds_fasttext_labels_cannot_inject_them(tmp_path: Path) -> None:
    # a dump of fastText training data: every line starts with a label of its own
    dump = "__label__neg this film is dull\n__label__pos a delight"
    assert fasttext_text(dump) == "_ _label_ _neg this film is dull _ _label_ _pos a delight"
    texts, labels = tiny_set()
    rater = FastTextRater(train_fasttext([*texts, dump], [*labels, 1], tmp_path / "m",
                                         FastTextParams(epoch=5)))
    assert set(rater.model.get_labels()) <= {f"__label__{i}" for i in range(6)}
    assert 0 <= rater.score([dump])[0] <= 5


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


SMALL_HEAD = HeadParams(alphas=(1.0, 100.0), tree_counts=(10, 30), blends=(0.0, 0.5, 1.0),
                        min_child_samples=3, inner_folds=3)


def _head_data(n: int = 90) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Labels driven by one vector dimension and one statistic, over three kinds."""
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2, 3, 4, 5], n // 6)
    vectors = rng.normal(size=(n, 8))
    vectors[:, 0] += labels
    stats = rng.uniform(size=(n, len(STAT_NAMES)))
    stats[:, 3] = labels / 5 + rng.normal(scale=0.05, size=n)
    groups = np.array(["a", "b", "c"] * (n // 3))
    return vectors, stats, labels, groups


def test_feature_head_is_deterministic_learns_and_round_trips(tmp_path: Path) -> None:
    vectors, stats, labels, groups = _head_data()
    head = fit_head(vectors, stats, labels, groups, SMALL_HEAD, encoder="test-encoder")
    again = fit_head(vectors, stats, labels, groups, SMALL_HEAD, encoder="test-encoder")
    path = head.save(tmp_path / "h.json")
    assert path.read_bytes() == again.save(tmp_path / "again.json").read_bytes()
    loaded = FeatureHead.load(path, expected_encoder="test-encoder")
    predicted = loaded.predict(vectors, stats)
    np.testing.assert_allclose(predicted, head.predict(vectors, stats))
    assert ((predicted >= 0) & (predicted <= 5)).all()
    assert spearman(predicted, labels) > 0.9
    assert loaded.meta["alpha"] in SMALL_HEAD.alphas and loaded.blend in SMALL_HEAD.blends
    assert loaded.predict(vectors[:0], stats[:0]).shape == (0,)


def test_feature_head_refuses_vectors_of_another_encoder(tmp_path: Path) -> None:
    vectors, stats, labels, groups = _head_data()
    path = fit_head(vectors, stats, labels, groups, SMALL_HEAD, "encoder-a").save(
        tmp_path / "h.json")
    with pytest.raises(ValueError, match="trained on 'encoder-a' vectors"):
        FeatureHead.load(path, expected_encoder="encoder-b")
    with pytest.raises(ValueError, match=f"expects {8 + len(STAT_NAMES)} features"):
        FeatureHead.load(path).predict(vectors[:, :4], stats)
    (tmp_path / "old.json").write_text(json.dumps({"encoder": "x", "coef": []}))
    with pytest.raises(ValueError, match="not a metamix-prrc-head"):
        FeatureHead.load(tmp_path / "old.json")


def test_feature_head_pure_ridge_and_pure_trees() -> None:
    """blend 1 keeps no trees (the file holds none); blend 0 ignores the vectors."""
    vectors, stats, labels, groups = _head_data()
    ridge = fit_head(vectors, stats, labels, groups, SMALL_HEAD.model_copy(
        update={"blends": (1.0,)}), "e")
    assert ridge.trees is None and ridge.blend == 1.0
    trees = fit_head(vectors, stats, labels, groups, SMALL_HEAD.model_copy(
        update={"blends": (0.0,)}), "e")
    shuffled = vectors[np.random.default_rng(1).permutation(len(vectors))]
    np.testing.assert_array_equal(trees.predict(vectors, stats), trees.predict(shuffled, stats))


def _write_tiny_annotations(root: Path) -> Path:
    """48 labelled excerpts in three kinds (each kind holds every good and bad text)."""
    import hashlib

    import pyarrow.parquet as pq

    texts, labels = tiny_set()
    seeds, rows = [], []
    for i, (text, label) in enumerate(zip(texts, labels, strict=True)):
        sha = hashlib.sha256(text.encode()).hexdigest()
        domain = ("web", "books", "code")[(i // 6) % 3]
        seeds.append({"id": f"pkg{i % 2}:d{i}", "domain": domain, "excerpt": text,
                      "excerpt_sha256": sha})
        rows.append({"id": f"pkg{i % 2}:d{i}", "domain": domain, "excerpt_sha256": sha,
                     "professionalism": label, "readability": label, "reasoning": label,
                     "cleanliness": label, "rubric_version": 1,
                     "split": "test" if i % 4 == 0 else "train"})
    (root / "seed_batch_1.jsonl").write_text("".join(json.dumps(s) + "\n" for s in seeds))
    pq.write_table(pa.Table.from_pylist(rows), root / "seed.parquet")
    return root / "seed.parquet"


def _tiny_config(tmp_path: Path, labels: Path, out: str, **overrides: object) -> TrainRaterConfig:
    return TrainRaterConfig(labels=str(labels), excerpts=(str(tmp_path / "*.jsonl"),),
                            out_dir=str(tmp_path / out), cache_dir=str(tmp_path / "cache"),
                            fasttext=FastTextParams(epoch=30, lr=0.5), head=SMALL_HEAD,
                            **{"workers": 1, **overrides})


def test_train_raters_end_to_end_then_score(tmp_path: Path) -> None:
    labels = _write_tiny_annotations(tmp_path)
    report = train_raters(_tiny_config(tmp_path, labels, "models"))
    assert report["n_test"] == 12 and report["n_train"] == 36 and report["n"] == 48
    assert report["n_folds"] == 3 and report["groups"] == {"books": 18, "code": 12, "web": 18}
    for dim, by_kind in report["metrics"].items():
        assert set(by_kind) == {"fasttext", "static", "embedding"}
        assert report["defaults"][dim] in ("fasttext", "static")  # embedding: not a candidate
        for m in by_kind.values():
            assert m["transfer"]["n"] == 48 and set(m["transfer"]["kinds"]) == \
                {"books", "code", "web"}
            assert m["test"]["n"] == 12
        assert by_kind["static"]["transfer"]["spearman"] > 0.8
        # two sources (pkg0, pkg1): two source-grouped folds; the choice uses both
        for m in by_kind.values():
            assert m["transfer_sources"]["n"] == 48
            assert m["transfer_score"] == pytest.approx(
                (m["transfer"]["spearman"] + m["transfer_sources"]["spearman"]) / 2)
            assert m["spread"]["calibrated"]["std_labels"] == m["spread"]["raw"]["std_labels"]
    assert report["n_source_folds"] == 2
    manifest = read_manifest(tmp_path / "models")
    assert set(manifest["calibration"]) == {"fasttext", "static", "embedding"}
    evaluation = (tmp_path / "models" / "evaluation.json").read_text()
    assert "NaN" not in evaluation and json.loads(evaluation)["defaults"] == manifest["defaults"]
    assert (tmp_path / "models" / manifest["encoders"]["static"]).is_dir()
    for kind in ("fasttext", "static", "embedding"):
        scorer = PRRCScorer(model_dir=str(tmp_path / "models"), kinds={"reasoning": kind},
                            dimensions=("reasoning",))
        out = scorer.score(pa.record_batch({"text": [CLEAN, NAV, None]}))
        values = out["prrc_reasoning"].to_pylist()
        assert values[2] is None and values[0] > values[1], kind
    # the scorer applies the manifest's calibration: a map that turns the scale around
    # turns the order around
    manifest_path = tmp_path / "models" / "manifest.json"
    turned = {**manifest, "calibration": {"static": {"reasoning": {"x": [0.0, 5.0],
                                                                   "y": [5.0, 0.0]}}}}
    manifest_path.write_text(json.dumps(turned))
    scorer = PRRCScorer(model_dir=str(tmp_path / "models"), kinds={"reasoning": "static"},
                        dimensions=("reasoning",))
    values = scorer.score(pa.record_batch({"text": [CLEAN, NAV]}))["prrc_reasoning"].to_pylist()
    assert values[0] < values[1]


def test_train_raters_is_deterministic_and_can_group_by_source(tmp_path: Path) -> None:
    labels = _write_tiny_annotations(tmp_path)
    first = train_raters(_tiny_config(tmp_path, labels, "a", kinds=("fasttext", "static")))
    train_raters(_tiny_config(tmp_path, labels, "b", kinds=("fasttext", "static")))
    for relative in ("static/cleanliness.json", "manifest.json"):
        assert (tmp_path / "a" / relative).read_bytes() == \
            (tmp_path / "b" / relative).read_bytes()
    np.testing.assert_array_equal(
        FastTextRater(tmp_path / "a" / "fasttext" / "reasoning.bin").probabilities(GOOD),
        FastTextRater(tmp_path / "b" / "fasttext" / "reasoning.bin").probabilities(GOOD))
    assert first["metrics"]["reasoning"]["static"]["transfer"]["n"] == 48
    by_source = train_raters(_tiny_config(
        tmp_path, labels, "c", kinds=("static",), cv={"group_by": "source"}, workers=2))
    assert by_source["groups"] == {"pkg0": 24, "pkg1": 24} and by_source["n_folds"] == 2


def test_held_out_predictions_do_not_depend_on_worker_count(tmp_path: Path) -> None:
    from metamix.scorers.prrc.raters_transfer import kind_folds
    from metamix.scorers.prrc.train_rater import build_trainers, held_out_kind_predictions
    from metamix.scorers.prrc.train_rater_data import load_labelled

    cfg = _tiny_config(tmp_path, _write_tiny_annotations(tmp_path), "m",
                       kinds=("fasttext", "static"))
    data = load_labelled(cfg.labels, cfg.excerpts)
    folds = kind_folds(data.kinds)
    trainers, _ = build_trainers(cfg, data, Console(stderr=True))
    y = data.labels["reasoning"].astype(float)
    calls: list[str] = []
    for kind, trainer in trainers.items():
        serial = held_out_kind_predictions(trainer, y, folds, lambda k=kind: calls.append(k), 1)
        parallel = held_out_kind_predictions(trainer, y, folds, workers=2)
        np.testing.assert_array_equal(serial, parallel)
    assert calls == ["fasttext"] * 3 + ["static"] * 3


# --- the shipped models -------------------------------------------------------------------

def test_shipped_models_are_small_and_complete() -> None:
    manifest = read_manifest(DEFAULT_MODEL_DIR)
    assert set(manifest["files"]) == {"fasttext", "static", "embedding"}
    for by_dim in manifest["files"].values():
        assert set(by_dim) == set(DIMENSIONS)
        for relative in by_dim.values():
            assert (DEFAULT_MODEL_DIR / relative).stat().st_size <= 5_000_000
    encoder = DEFAULT_MODEL_DIR / manifest["encoders"]["static"]
    assert sum(p.stat().st_size for p in encoder.iterdir()) < 30_000_000
    evaluation = json.loads((DEFAULT_MODEL_DIR / "evaluation.json").read_text())
    assert evaluation["defaults"] == manifest["defaults"]
    for dim, kind in manifest["defaults"].items():
        assert kind in ("fasttext", "static")  # the CPU-speed kinds
        best = max(("fasttext", "static"),
                   key=lambda k: evaluation["metrics"][dim][k]["transfer"]["spearman"])
        assert kind == best


@pytest.mark.parametrize("kind", ["fasttext", "static", "embedding"])
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


def test_scorer_rejects_unknown_dimensions_and_kinds() -> None:
    with pytest.raises(ValueError, match="unknown PRRC dimensions \\['clarity'\\]"):
        PRRCScorer(dimensions=("clarity",))
    with pytest.raises(ValueError, match="unknown PRRC rater kinds \\['bert'\\]"):
        PRRCScorer(kinds={"reasoning": "bert"})


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
