"""A tiny run folder with every output the report reads, values chosen so each figure's
data can be checked by hand (imported by the other test_report* files)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

#: id, domain, n_tokens, word count, lorem flag, readability, c4 drop reason
DOCS = [
    ("d1", "a", 10, 10, False, 1.0, None),
    ("d2", "a", 20, 20, False, 2.0, "too_few_sentences"),
    ("d3", "a", 30, 30, True, 3.0, None),
    ("d4", "a", 40, 40, False, 4.0, "lorem_ipsum"),
    ("d5", "b", 100, 100, False, 0.5, "too_few_sentences"),
    ("d6", "b", 200, 200, False, 1.5, "too_few_sentences"),
    ("d7", "b", 300, 300, False, 2.5, None),
    ("d8", "b", 400, 400, False, 4.5, None),
]
SELECTED = {"a": ["d2", "d3", "d4"], "b": ["d7", "d8"]}


def text_of(doc_id: str) -> str:
    """Long enough that an excerpt is a strict prefix; '<b>' checks the page escapes it."""
    return f"{doc_id} <b>text</b> " + "word " * 100


def _docs_table(rows: list[tuple]) -> pa.Table:
    return pa.table({
        "id": [r[0] for r in rows], "text": [text_of(r[0]) for r in rows],
        "domain": [r[1] for r in rows], "source": ["src"] * len(rows),
        "n_tokens": pa.array([r[2] for r in rows], pa.int32()),
        "rps_doc_word_count": pa.array([r[3] for r in rows], pa.int32()),
        "c4_has_lorem_ipsum": pa.array([r[4] for r in rows], pa.bool_()),
        "prrc_readability": pa.array([r[5] for r in rows], pa.float32()),
        "c4_drop_reason": pa.array([r[6] for r in rows], pa.string()),
    })


def _json(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1))


def _stats(read: int, written: int, quarantined: dict[str, int] | None = None) -> dict:
    return {"read": read, "written": written, "dropped": {}, "quarantined": quarantined or {},
            "bytes_in": 0}


def write_corpus(run: Path) -> None:
    (run / "scored").mkdir(parents=True)
    pq.write_table(_docs_table(DOCS[:4]), run / "scored" / "part-00000.parquet",
                   row_group_size=2)
    pq.write_table(_docs_table(DOCS[4:]), run / "scored" / "part-00001.parquet",
                   row_group_size=2)
    (run / "validation").mkdir()
    pq.write_table(pa.table({"id": ["v1", "v2"], "text": ["x", "y"], "domain": ["a", "a"],
                             "source": ["s", "s"],
                             "n_tokens": pa.array([5, 7], pa.int32())}),
                   run / "validation" / "part-00000.parquet")
    _json(run / "_manifests" / "ingest.json", {"stage": "ingest",
                                              "totals": _stats(9, 8, {"invalid_json": 1})})
    _json(run / "_manifests" / "scored.json", {"stage": "scored", "totals": _stats(8, 8)})
    _json(run / "validation" / "_manifest.json", {"stage": "validation",   # an older layout
                                                  "totals": _stats(2, 2)})
    (run / "quarantine").mkdir()
    pq.write_table(pa.table({"stage": ["ingest"], "shard": ["x.jsonl"], "row": [3],
                             "id": pa.array([None], pa.string()), "reason": ["invalid_json"],
                             "detail": ["{bad </script> json"]}),
                   run / "quarantine" / "ingest-part-00000.parquet")


def write_selection(run: Path) -> None:
    by_id = {d[0]: d for d in DOCS}
    for domain, ids in SELECTED.items():
        table = _docs_table([by_id[i] for i in ids])
        table = table.append_column("combined_score", pa.array([1.0] * len(ids)))
        (run / "selected").mkdir(exist_ok=True)
        pq.write_table(table, run / "selected" / f"{domain}.parquet")
    _json(run / "selection_summary.json", {
        "config": {"mode": "token_budget"},
        "resolved": {"weights": {"rps_doc_word_count": 1.0, "prrc_readability": 0.5,
                                 "c4_has_lorem_ipsum": -0.25, "n_unused": 0.0},
                     "weights_source": "metarater/weights.json"},
        "quotas": {"budget_tokens": {"a": 60, "b": 700}},
        "domains": {
            "a": {"docs_before": 4, "docs_after": 3, "tokens_before": 100, "tokens_after": 90,
                  "dropped_docs": {"not_selected": 1}, "dropped_tokens": {"not_selected": 10}},
            "b": {"docs_before": 4, "docs_after": 2, "tokens_before": 1000,
                  "tokens_after": 700, "dropped_docs": {"not_selected": 2},
                  "dropped_tokens": {"not_selected": 300}}},
        "totals": {"docs_before": 8, "docs_after": 5, "tokens_before": 1100,
                   "tokens_after": 790, "dropped_docs": {"not_selected": 3}},
        "invariant": {"holds": True, "rows_read": 8, "rows_written": 5, "rows_dropped": 3}})


#: Dirichlet runs: weight of s1 and the loss, exactly linear in it (ridge fits it exactly).
DIRICHLET = [(i / 10 + 0.05, 5.0 + 0.3 * (i / 10 + 0.05)) for i in range(10)]


def _attempt(run_id: str, kind: str, status: str, weights: dict, loss: float | None,
             docs: int = 10, tokens: int = 1000) -> dict:
    return {"run_id": run_id, "kind": kind, "status": status, "weights": json.dumps(weights),
            "selection_docs": docs, "selection_tokens": tokens,
            "mean_loss": loss, "losses": json.dumps({"a": loss, "b": loss}) if loss else None,
            "seconds": 1.0}


def write_metarater(run: Path, report: dict | None = None) -> None:
    """Ten Dirichlet runs (one failed attempt first), two random draws, equal, two singles
    and the learned run, with the summary the Meta-rater step writes."""
    rows = [_attempt("dirichlet-003", "dirichlet", "error", {}, None)]  # failed, then retried
    rows += [_attempt(f"dirichlet-{i:03d}", "dirichlet", "ok", {"s1": w, "s2": -(1 - w)},
                      loss, tokens=1000 + 100 * i) for i, (w, loss) in enumerate(DIRICHLET)]
    rows += [_attempt("random-0", "random", "ok", {}, 4.8, tokens=500),
             _attempt("random-1", "random", "ok", {}, 4.82, tokens=500),
             _attempt("equal", "equal", "ok", {"s1": 0.5, "s2": -0.5}, 5.0),
             _attempt("single-s1", "single", "ok", {"s1": 1.0}, 5.1),
             _attempt("single-s2", "single", "ok", {"s2": -1.0}, 5.2),
             _attempt("learned-x", "learned", "ok", {"s1": 0.7, "s2": -0.3}, 4.9, tokens=2000)]
    (run / "metarater").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), run / "metarater" / "runs.parquet")
    weights = {"s1": 0.7, "s2": -0.3}
    runs = {r["run_id"]: {"kind": r["kind"], "report": r["mean_loss"],
                          "fit": r["mean_loss"] - 0.01, "rank": None}
            for r in rows if r["status"] == "ok"}
    dirichlet = [f"dirichlet-{i:03d}" for i in range(10)]
    summary = {
        "targets": {"manuals": {"kind": "text", "weight": 1.0, "learned": 4.9,
                                "random_mean": 4.81, "random_std": 0.0141, "gap_std": 6.4}},
        "scores": ["s1", "s2"], "k": 10,
        "report": report or {"learned": 4.9, "random_mean": 4.81, "random_std": 0.0141,
                             "noise_std": 0.02, "gap_std": 4.5, "rank": 2, "n_runs": 15,
                             "cv_spearman": {"lightgbm": 0.4, "ridge": 0.9}},
        "cv": {reg: {"spearman": rho, "report_spearman": rho - 0.1, "oof": {
            "run_id": dirichlet, "fit": [runs[r]["fit"] for r in dirichlet],
            "report": [runs[r]["report"] for r in dirichlet],
            "predicted": [runs[r]["fit"] + 0.001 * i for i, r in enumerate(dirichlet)]}}
            for reg, rho in (("lightgbm", 0.5), ("ridge", 1.0))},
        "learned": {"run_id": "learned-x", "predicted_fit": 4.95, "fit": 4.89,
                    "weights": weights, "importance": {"s1": 0.6, "s2": 0.4},
                    "regressor": "ridge"},
        "runs": runs,
        "dirichlet": {"best": 4.85, "median": 5.0, "worst": 5.3, "std": 0.1},
        "seed_noise": {"pooled_std": None},
        "document_lengths": {"per_domain": {"a": {
            "learned_docs": 4, "learned_median_tokens": 500.0, "random_docs": 10.0,
            "random_median_tokens": 200.0}}, "collapsed_domains": []},
        "verdicts": ["the learned weights beat random selection by 4.5 noise std"]}
    _json(run / "metarater" / "summary.json", summary)
    _json(run / "metarater" / "weights.json", {"weights": weights,
                                               "importance": {"s1": 0.6, "s2": 0.4}})


def mix_weight(step: int) -> float:
    """w_x of the step-th run (1-based): 8 sampled, 2 BO, 1 final."""
    return [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95][step - 1]


def mix_objective(w: float) -> float:
    """(loss_x + loss_y) / 2 with loss_x = 5 - w and loss_y = 4 + w / 2."""
    return ((5 - w) + (4 + w / 2)) / 2


def write_mix(run: Path) -> None:
    ids = [f"sample-{i}" for i in range(1, 9)] + ["bo-1", "bo-2", "final-1"]
    kinds = ["sample"] * 8 + ["bo"] * 2 + ["final"]
    w = [mix_weight(i) for i in range(1, 12)]
    loss_x, loss_y = [5 - v for v in w], [4 + v / 2 for v in w]
    (run / "mix").mkdir(parents=True)
    pq.write_table(pa.table({
        "run_id": ids, "kind": kinds, "w_x": w, "w_y": [1 - v for v in w],
        "loss_x": loss_x, "loss_y": loss_y,
        "mde_x": [v + 0.1 for v in loss_x], "mde_y": [v + 0.1 for v in loss_y]}),
        run / "mix" / "runs.parquet")
    attempts = ids[:2] + ["sample-3"] + ids[2:]   # sample-3 failed once (2 s), then ran
    seconds = [1.0, 1.0, 2.0] + [1.0] * (len(ids) - 2)
    pq.write_table(pa.table({"run_id": attempts, "seconds": seconds}),
                   run / "mix" / "attempts.parquet")
    _json(run / "mixture" / "weights.json", {
        "weights": {"x": 0.9, "y": 0.1},
        "per_domain": {"x": {"weight": 0.9, "prior": 0.4, "cap": 0.95, "tokens": 900,
                             "epochs": 0.5},
                       "y": {"weight": 0.1, "prior": 0.6, "cap": 1.0, "tokens": 100,
                             "epochs": 0.1}},
        "objective": {"spec": "equal", "weights": {"x": 0.5, "y": 0.5}},
        "predicted_loss": 4.27, "actual_proxy_loss": 4.2625,
        "predicted_losses": {"x": 4.06, "y": 4.48}, "actual_proxy_losses": {"x": 4.05,
                                                                           "y": 4.475},
        "surrogate_kfold": {"linear": {"spearman": 0.5, "mse": 0.1},
                            "linear+mde": {"spearman": 0.9, "mse": 0.01}},
        "provenance": {"surrogate": "linear+mde", "runs_used": ids[:10]}})


def make_run(root: Path, *, metarater_report: dict | None = None) -> Path:
    """``root/out/t``: scored, validation, manifests, quarantine, Meta-rater, mix, selection."""
    run = root / "out" / "t"
    write_corpus(run)
    write_selection(run)
    write_metarater(run, metarater_report)
    write_mix(run)
    return run
