"""Everything the report reads from ``out/<run>/metarater/`` — one module, so a change of
the Meta-rater outputs is adapted here alone.

Read today: ``summary.json`` (``target``, ``scores``, ``cv.<regressor>.spearman``,
``learned``, ``baselines``, ``dirichlet``, ``seed_noise.pooled_std``, ``config``),
``weights.json`` (``weights``, ``importance``) and ``runs.parquet`` (one row per attempt:
``run_id``, ``kind``, ``status``, ``weights`` JSON, ``selection_docs``,
``selection_tokens``, ``mean_loss``, ``losses`` JSON).

Read when present (the reworked Meta-rater): ``summary["report"]`` =
{learned, random_mean, random_std, gap_std, rank, n_runs, cv_spearman: {regressor: rho}},
shown as headline numbers; ``summary["cv"][regressor]["oof"]`` = {"run_id": [...],
"actual": [...], "predicted": [...]} (K-fold out-of-fold predictions; without it they are
recomputed from runs.parquet with the run's folds, seed and regressor settings); and
``summary["doc_length"]`` (or ``summary["report"]["doc_length"]``), any JSON object,
flattened into a table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metamix.report.runfiles import read_json, read_table

REGRESSORS = ("lightgbm", "ridge")


@dataclass
class MetaraterRun:
    summary: dict[str, Any]
    weights_file: dict[str, Any] | None
    runs: pd.DataFrame | None     # the successful attempt of each run id

    @property
    def target(self) -> str:
        return str(self.summary.get("target", "mean"))

    @property
    def report(self) -> dict[str, Any]:
        value = self.summary.get("report")
        return value if isinstance(value, dict) else {}


def load(run_dir: Path) -> MetaraterRun | None:
    folder = run_dir / "metarater"
    summary = read_json(folder / "summary.json")
    if summary is None:
        return None
    runs = read_table(folder / "runs.parquet")
    if runs is not None and {"run_id", "status"} <= set(runs.columns):
        runs = runs[runs["status"] == "ok"].drop_duplicates("run_id", keep="last")
        runs = runs.sort_values("run_id", kind="stable").reset_index(drop=True)
    else:
        runs = None
    return MetaraterRun(summary, read_json(folder / "weights.json"), runs)


def _target_loss(row: pd.Series, target: str) -> float:
    if target == "mean":
        return float(row["mean_loss"])
    return float(json.loads(row["losses"])[target])


def headline(run: MetaraterRun) -> pd.DataFrame:
    """name, value: the numbers a reader checks first (``report`` when present)."""
    s, rows = run.summary, []
    if run.report:
        for key, value in sorted(_flatten(run.report).items()):
            if not key.startswith("doc_length"):
                rows.append((key, value))
        return pd.DataFrame(rows, columns=["name", "value"])
    learned = s.get("learned", {})
    rows += [("learned loss", learned.get("loss")),
             ("learned predicted loss", learned.get("predicted_loss")),
             ("learned rank", f"{learned.get('rank')} of {learned.get('of')}"),
             ("random baseline loss", s.get("baselines", {}).get("random")),
             ("pooled seed-noise std", s.get("seed_noise", {}).get("pooled_std")),
             ("proxy runs", s.get("n_runs"))]
    rows += [(f"K-fold Spearman ({k})", v.get("spearman")) for k, v in s.get("cv", {}).items()
             if isinstance(v, dict)]
    return pd.DataFrame([r for r in rows if r[1] is not None], columns=["name", "value"])


def _saved_oof(run: MetaraterRun) -> pd.DataFrame | None:
    frames = []
    for reg, cv in (run.summary.get("cv") or {}).items():
        oof = cv.get("oof") if isinstance(cv, dict) else None
        if isinstance(oof, dict) and {"actual", "predicted"} <= set(oof):
            frames.append(pd.DataFrame({"regressor": reg, "run_id": oof.get("run_id"),
                                        "actual": oof["actual"],
                                        "predicted": oof["predicted"]}))
    return pd.concat(frames, ignore_index=True) if frames else None


def oof_predictions(run: MetaraterRun, seed: int) -> pd.DataFrame:
    """regressor, run_id, actual, predicted: K-fold out-of-fold predictions of the loss.
    Saved ones when summary.json has them, else refitted exactly as the Meta-rater step
    does (Dirichlet runs in plan order, its KFold seed and settings): two small models on
    K rows, well under a second."""
    saved = _saved_oof(run)
    if saved is not None:
        return saved
    names = run.summary.get("scores")
    if run.runs is None or not names:
        return pd.DataFrame(columns=["regressor", "run_id", "actual", "predicted"])
    from sklearn.model_selection import KFold

    from metamix.mixtures.metarater.fit import make_regressor

    fit = run.runs[run.runs["kind"] == "dirichlet"]
    config = run.summary.get("config", {})
    folds = max(2, min(int(config.get("folds", 5)), len(fit)))
    if len(fit) < folds or len(fit) < 4:
        return pd.DataFrame(columns=["regressor", "run_id", "actual", "predicted"])
    seed = int(config["seed"]) if config.get("seed") is not None else seed
    weights = [json.loads(w) for w in fit["weights"]]
    x = np.array([[abs(w.get(n, 0.0)) for n in names] for w in weights])
    x /= x.sum(axis=1, keepdims=True)
    y = np.array([_target_loss(r, run.target) for _, r in fit.iterrows()])
    frames = []
    for reg in REGRESSORS:
        params = config.get("regressor_params") if reg == "lightgbm" else None
        oof = np.empty(len(y))
        for train, test in KFold(folds, shuffle=True, random_state=seed).split(x):
            oof[test] = make_regressor(reg, seed, params).fit(x[train], y[train]).predict(
                x[test])
        frames.append(pd.DataFrame({"regressor": reg, "run_id": fit["run_id"].to_numpy(),
                                    "actual": y, "predicted": oof}))
    return pd.concat(frames, ignore_index=True)


def learned_weights(run: MetaraterRun) -> pd.DataFrame:
    """score, weight (signed: negative = lower is better), importance (LightGBM gain share)."""
    source = run.weights_file or run.summary.get("learned") or {}
    weights = source.get("weights") or {}
    importance = source.get("importance") or {}
    df = pd.DataFrame({"score": list(weights), "weight": [float(v) for v in weights.values()],
                       "importance": [float(importance.get(k, np.nan)) for k in weights]})
    return df.sort_values(["weight", "score"], ascending=[False, True],
                          kind="stable").reset_index(drop=True)


def baselines(run: MetaraterRun) -> pd.DataFrame:
    """label, kind, loss, lo, hi: the learned weights and every baseline by actual proxy
    loss, each with ± 2 seed-noise std (how far one run's loss moves with the seed alone)."""
    s = run.summary
    noise = s.get("seed_noise", {}).get("pooled_std")
    rows = []
    learned = s.get("learned", {})
    if learned.get("loss") is not None:
        rows.append(("learned", "learned", float(learned["loss"]), noise))
    random_std = run.report.get("random_std", noise)
    for name, loss in sorted((s.get("baselines") or {}).items()):
        if loss is None:
            continue
        kind = name.split("-")[0]
        if name == "random" and run.report.get("random_mean") is not None:
            loss = run.report["random_mean"]
        rows.append((name, kind, float(loss), random_std if name == "random" else noise))
    for key in ("best", "median", "worst"):
        if key in (s.get("dirichlet") or {}):
            rows.append((f"Dirichlet {key}", "dirichlet", float(s["dirichlet"][key]), noise))
    df = pd.DataFrame(rows, columns=["label", "kind", "loss", "std"])
    std = df["std"].astype(float)
    df["lo"], df["hi"] = df["loss"] - 2 * std, df["loss"] + 2 * std
    return df.drop(columns="std").sort_values(["loss", "label"], kind="stable").reset_index(
        drop=True)


def doc_lengths(run: MetaraterRun) -> pd.DataFrame:
    """run_id, kind, docs, tokens, tokens_per_doc, loss for every successful run: whether the
    loss follows mere document length (a selection of long documents has fewer, longer
    documents under the same budget)."""
    cols = ["run_id", "kind", "docs", "tokens", "tokens_per_doc", "loss"]
    if run.runs is None or not {"selection_docs", "selection_tokens"} <= set(run.runs.columns):
        return pd.DataFrame(columns=cols)
    df = run.runs[run.runs["selection_docs"] > 0]
    out = pd.DataFrame({
        "run_id": df["run_id"], "kind": df["kind"].str.replace("-repeat", "", regex=False),
        "docs": df["selection_docs"].astype(int), "tokens": df["selection_tokens"].astype(int),
        "tokens_per_doc": df["selection_tokens"] / df["selection_docs"],
        "loss": [_target_loss(r, run.target) for _, r in df.iterrows()]})
    return out.reset_index(drop=True)


def doc_length_diagnostics(run: MetaraterRun) -> pd.DataFrame:
    """name, value: the Meta-rater's own document-length diagnostics, whatever their shape."""
    value = run.summary.get("doc_length", run.report.get("doc_length"))
    if not isinstance(value, dict):
        return pd.DataFrame(columns=["name", "value"])
    return pd.DataFrame(sorted(_flatten(value).items()), columns=["name", "value"])


def _flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        elif isinstance(value, list):
            out[name] = ", ".join(str(v) for v in value[:20]) + (" …" if len(value) > 20
                                                                  else "")
        else:
            out[name] = value
    return out
