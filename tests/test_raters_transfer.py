"""Transfer evaluation of PRRC raters: kind folds, held-out-kind metrics and inversions, the
text statistics and static encoder the fast rater reads, and train-rater on a v2 seed set."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
from pathlib import Path
from types import ModuleType

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metamix.scorers.prrc.raters_static import StaticEncoder, load_static_encoder
from metamix.scorers.prrc.raters_text_stats import STAT_NAMES, text_statistics
from metamix.scorers.prrc.raters_transfer import kind_folds, kind_inversions, transfer_metrics
from metamix.scorers.prrc.train_rater import TrainRaterConfig, train_raters

REPO = Path(__file__).resolve().parent.parent


# --- folds and metrics -------------------------------------------------------------------

def test_leave_one_kind_out_holds_out_each_kind_once() -> None:
    groups = ["b", "a", "b", "c"]
    folds = kind_folds(groups)
    assert [held.tolist() for _, held in folds] == [[1], [0, 2], [3]]  # kinds a, b, c
    for train, held in folds:
        assert not set(np.asarray(groups)[train]) & set(np.asarray(groups)[held])
    k_fold = kind_folds(groups * 3, "group_k_fold", folds=2)
    assert len(k_fold) == 2
    assert sorted(np.concatenate([held for _, held in k_fold]).tolist()) == list(range(12))
    with pytest.raises(ValueError, match="≥ 2 kinds"):
        kind_folds(["a", "a"])


def test_transfer_metrics_on_a_hand_example() -> None:
    """Kinds A (labels 4,5), B (2,3), C (0,1). Predicted means: A 3.25 < B 3.30 although A is
    labelled 2.0 above B: one inversion. Pooled ranks: predicted 3,6,4,5,2,1 vs labelled
    5,6,3,4,1,2, Σd² = 8, ρ = 1 − 48/210. Kind means rank 2,3,1 vs 3,2,1: ρ = 0.5."""
    predicted = [3.0, 3.5, 3.2, 3.4, 1.0, 0.5]
    labels = [4, 5, 2, 3, 0, 1]
    groups = ["A", "A", "B", "B", "C", "C"]
    m = transfer_metrics(predicted, labels, groups, margin=0.25)
    assert m["spearman"] == pytest.approx(1 - 48 / 210)
    assert m["kind_order_spearman"] == pytest.approx(0.5)
    assert m["within_kind_spearman_mean"] == pytest.approx(1 / 3)
    assert m["within_kind_spearman_min"] == pytest.approx(-1.0)
    assert m["kinds"]["A"] == {"n": 2, "label_mean": 4.5, "predicted_mean": 3.25,
                               "spearman": pytest.approx(1.0)}
    assert m["n_inversions"] == 1
    inversion = m["inversions"][0]
    assert (inversion["higher"], inversion["lower"]) == ("A", "B")
    assert inversion["label_gap"] == pytest.approx(2.0)
    assert inversion["predicted_gap"] == pytest.approx(-0.05)
    assert transfer_metrics(predicted, labels, groups, margin=2.5)["n_inversions"] == 0


def test_kind_with_equal_labels_has_no_within_kind_spearman() -> None:
    m = transfer_metrics([1.0, 2.0, 3.0, 4.0], [2, 2, 1, 3], ["x", "x", "y", "y"], 0.25)
    assert math.isnan(m["kinds"]["x"]["spearman"])
    assert m["within_kind_spearman_mean"] == pytest.approx(1.0)


def test_inversions_ignore_label_ties_within_the_margin() -> None:
    labelled = {"a": 3.0, "b": 2.9, "c": 1.0}
    predicted = {"a": 2.0, "b": 2.5, "c": 3.0}
    found = kind_inversions(labelled, predicted, margin=0.25)
    assert [(i["higher"], i["lower"]) for i in found] == [("a", "c"), ("b", "c")]


# --- text statistics and the static encoder -------------------------------------------------

def test_text_statistics_hand_checked() -> None:
    """45 bytes, 4 lines (one blank), 10 words, 2 sentence ends ('world.', 'fine.')."""
    text = "Hello world. This is fine.\n\n* item one\n* item"
    stats = dict(zip(STAT_NAMES, text_statistics([text, "", "a\nb"])[0], strict=True))
    expected = {
        "log_bytes": math.log1p(45), "frac_upper": 2 / 45, "frac_letter": 31 / 45,
        "frac_space": 7 / 45, "frac_newline": 3 / 45, "frac_code_symbol": 2 / 45,
        "frac_punct": 2 / 45, "mean_word_bytes": 3.5, "log_words_per_sentence": math.log1p(5),
        "frac_lines_terminal": 1 / 3, "frac_lines_short": 1.0, "frac_lines_markup": 2 / 3,
        "log_mean_line_bytes": math.log1p(14), "frac_lines_blank": 1 / 4,
        "frac_lines_duplicate": 0.0, "frac_stop_words": 3 / 10, "frac_alpha_words": 6 / 10,
        "type_token_ratio": 8 / 10, "urls_per_kb": 0.0, "frac_digit": 0.0,
        "frac_non_ascii": 0.0, "frac_control": 0.0,
        # every word is a dictionary word; 'Hello', 'This' capitalized; two full stops, none
        # split off by a space; the one sentence start ('This') is upper case; no trigram
        # repeats; 'item' is 2 of 10 words; no stock phrase
        "frac_oov_words": 0.0, "mixed_junctions_per_word": 0.0, "frac_capitalized_words": 0.2,
        "char_class_entropy": -sum(c / 45 * math.log2(c / 45) for c in (2, 29, 7, 3, 2, 2)),
        "punct_per_word": 0.2, "frac_spaced_punct": 0.0, "frac_lower_sentence_starts": 0.0,
        "frac_repeated_trigrams": 0.0, "top_word_share": 0.2,
        "log_boilerplate_per_100_words": 0.0,
    }
    assert stats == pytest.approx(expected, rel=1e-5)


def test_noise_statistics_see_ocr_damage_case_folding_and_keyword_stuffing() -> None:
    clean = "New South Wales are gearing up for the winter. The farmers expect rain."
    ocr = "Ncw 5outli Wales arc georing up for tlie wintcr. Tlie farmcrs expcct rain."
    folded = "new south wales are gearing up for the winter . the farmers expect rain ."
    stuffed = ("Cheap Car Insurance | Cheap Car Insurance Quotes | Cheap Car Insurance Online "
               "- Add to cart - Free shipping - All rights reserved")
    rows = text_statistics([clean, ocr, folded, stuffed])
    s = [dict(zip(STAT_NAMES, row, strict=True)) for row in rows]
    # OCR: 'ncw', 'georing', 'tlie' (x2), 'wintcr', 'farmcrs', 'expcct' of the 11 checkable
    # words ('up' too short, '5outli' not alphabetic; 'arc' is a word) are in no dictionary
    assert s[0]["frac_oov_words"] == 0.0
    assert s[1]["frac_oov_words"] == pytest.approx(7 / 11)
    assert s[1]["mixed_junctions_per_word"] == pytest.approx(1 / 13)      # '5o' in '5outli'
    # case folded and tokenised: every full stop split off, the sentence starts lower case
    assert s[2]["frac_spaced_punct"] == 1.0 and s[2]["frac_lower_sentence_starts"] == 1.0
    assert s[0]["frac_spaced_punct"] == 0.0 and s[0]["frac_lower_sentence_starts"] == 0.0
    # stuffed, 24 words: of 22 trigrams 'cheap car insurance' repeats twice and '| cheap car'
    # once; 'cheap' is 3 of the 24 words; 'add to cart', 'free shipping', 'all rights
    # reserved' are stock phrases
    assert s[3]["frac_repeated_trigrams"] == pytest.approx(3 / 22)
    assert s[3]["top_word_share"] == pytest.approx(3 / 24)
    assert s[3]["log_boilerplate_per_100_words"] > s[0]["log_boilerplate_per_100_words"] == 0.0


def test_text_statistics_batch_equals_one_by_one() -> None:
    texts = ["", "x", "Line one.\nline one.\nline one.\n", "ünïcödé → text\n\n\n",
             "see https://example.org and www.example.org", "a" * 3000, "\x00\x01 ctl"]
    batch = text_statistics(texts)
    assert batch.shape == (len(texts), len(STAT_NAMES)) and batch.dtype == np.float32
    for row, text in enumerate(texts):
        np.testing.assert_allclose(batch[row], text_statistics([text])[0], rtol=1e-6)
    assert not batch[0].any() and np.isfinite(batch).all()
    dup = dict(zip(STAT_NAMES, batch[2], strict=True))
    assert dup["frac_lines_duplicate"] == pytest.approx(1 / 3)  # 'line one.' twice
    assert text_statistics([]).shape == (0, len(STAT_NAMES))


def test_static_encoder_matches_model2vec_and_handles_empty_text() -> None:
    from model2vec import StaticModel

    encoder = load_static_encoder()
    texts = ["The committee met on Tuesday.", "", "def f(x): return x + 1", "ünïcödé 中文"]
    vectors = encoder.encode(texts)
    assert vectors.shape == (4, encoder.dim) and vectors.dtype == np.float32
    assert not vectors[1].any()
    np.testing.assert_allclose(np.linalg.norm(vectors[[0, 2, 3]], axis=1), 1.0, rtol=1e-5)
    reference = StaticModel.from_pretrained(encoder.path).encode(
        [texts[0], texts[2]], max_length=None, normalize=True, use_multiprocessing=False)
    np.testing.assert_allclose(vectors[[0, 2]], reference.astype(np.float32), atol=5e-3)
    assert encoder.encode([]).shape == (0, encoder.dim)
    assert load_static_encoder() is encoder  # loaded once per process


def test_static_encoder_folder_must_exist(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no static encoder"):
        StaticEncoder(tmp_path)


# --- train-rater on a v2 seed set (synthetic) -------------------------------------------

GOOD = ["The committee reviewed the annual budget and agreed to repair the roof because "
        "water was damaging the archive.",
        "Water boils at a lower temperature at altitude because the air pressure is lower.",
        "The proof follows by induction: the base case holds, and each step preserves it."]
BAD = ["Home | About | Products | Contact | Login | Sign up | © 2024 | Privacy | Terms",
       "click here click here buy now!!! $$$ free free free",
       "lorem ipsum | menu | share | tweet | like | next » | prev «"]


def _merge_seed() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "merge_seed", REPO / "bench" / "annotation" / "merge_seed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_v2_fixture(root: Path) -> None:
    """v1: 12 excerpts in 2 domains; v2: 3 kinds × 12 excerpts; good texts score 4–5, bad
    ones 0–1 on every dimension, so any sensible rater transfers across kinds."""
    def sha(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    def score(i: int, good: bool) -> dict[str, int]:
        base = 4 + i % 2 if good else i % 2
        return {"professionalism": base, "readability": base, "reasoning": base,
                "cleanliness": base}

    seeds, labels = [], []
    for i in range(12):
        text = f"{(GOOD if i % 2 else BAD)[i % 3]} Entry {i}."
        doc = {"id": f"pkg:v1-{i}", "domain": "web" if i < 6 else "books",
               "excerpt": text, "excerpt_sha256": sha(text)}
        seeds.append(doc)
        labels.append({"id": doc["id"], "excerpt_sha256": doc["excerpt_sha256"], "note": "",
                       **score(i, bool(i % 2))})
    (root / "seed_batch_1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in seeds))
    (root / "labels_batch_1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in labels))
    batches, v2_labels = [], []
    for k, kind in enumerate(("readme", "log", "licence")):
        for i in range(12):
            good = (i + k) % 2 == 0
            text = f"{(GOOD if good else BAD)[i % 3]} ({kind} {i})"
            doc = {"id": f"{kind}:doc{i}", "kind": kind, "source": f"src-{kind}",
                   "licence": "MIT", "excerpt": text, "excerpt_sha256": sha(text)}
            batches.append(doc)
            v2_labels.append({"id": doc["id"], "excerpt_sha256": doc["excerpt_sha256"],
                              "note": "", "annotator": "a1", **score(i, good)})
    (root / "v2" / "batches").mkdir(parents=True)
    (root / "v2" / "labels").mkdir(parents=True)
    (root / "v2" / "batches" / "batch_01.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in batches))
    (root / "v2" / "labels" / "batch_01.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in v2_labels))


def test_train_raters_on_a_v2_seed_set(tmp_path: Path) -> None:
    from metamix.scorers.prrc.raters_fasttext import FastTextParams
    from metamix.scorers.prrc.raters_head import HeadParams

    write_v2_fixture(tmp_path)
    assert _merge_seed().main(["--dir", str(tmp_path), "--require-complete"]) == 0
    labels = tmp_path / "prrc_seed_v2.parquet"
    assert pq.read_table(labels).num_rows == 48
    cfg = TrainRaterConfig(
        labels=str(labels), out_dir=str(tmp_path / "models"),
        excerpts=(str(tmp_path / "seed_batch_*.jsonl"),
                  str(tmp_path / "v2" / "batches" / "batch_*.jsonl")),
        kinds=("fasttext", "static"), fasttext=FastTextParams(epoch=30, lr=0.5),
        head=HeadParams(alphas=(1.0, 100.0), tree_counts=(10,), min_child_samples=3))
    report = train_raters(cfg)
    assert report["groups"] == {"books": 6, "licence": 12, "log": 12, "readme": 12, "web": 6}
    assert report["n_folds"] == 5
    for dim in cfg.dimensions:
        transfer = report["metrics"][dim]["static"]["transfer"]
        assert transfer["spearman"] > 0.7, (dim, transfer["spearman"])
        assert set(transfer["kinds"]) == set(report["groups"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=300), min_size=1, max_size=5))
def test_text_statistics_are_finite_on_any_unicode(texts: list[str]) -> None:
    batch = text_statistics(texts)
    assert batch.shape == (len(texts), len(STAT_NAMES)) and np.isfinite(batch).all()
    named = dict(zip(STAT_NAMES, batch.T, strict=True))
    for name in ("frac_oov_words", "frac_spaced_punct", "frac_lower_sentence_starts",
                 "frac_repeated_trigrams", "top_word_share", "frac_capitalized_words"):
        assert ((named[name] >= 0) & (named[name] <= 1)).all(), name
