"""Everything the report reads from ``out/<run>/metarater/`` — one module, so a change of
the Meta-rater outputs is adapted here alone.

Read: ``summary.json`` (``report`` = the verdict on the report half of the targets,
``targets``, ``learned``, ``cv.<regressor>`` with ``oof`` = {run_id, fit, report,
predicted} out-of-fold predictions, ``runs`` = {run_id: {kind, report, fit, rank}},
``dirichlet``, ``document_lengths``, ``scores``, ``k``, ``verdicts``), ``weights.json``
(``weights``, ``importance``) and ``runs.parquet`` (``selection_docs``,
``selection_tokens`` of each attempt).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metamix.report.runfiles import read_json, read_table

#: singles shown next to the learned weights (the best ones; all are in summary.json)
TOP_SINGLES = 8


@dataclass
class MetaraterRun:
    summary: dict[str, Any]
    weights_file: dict[str, Any] | None
    runs: pd.DataFrame | None     # the successful attempt of each run id

    @property
    def target(self) -> str:
        names = list(self.summary.get("targets") or {})
        return ", ".join(names) or "?"

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


def headline(run: MetaraterRun) -> pd.DataFrame:
    """name, value: the verdict first, then each target's learned vs random."""
    rows = [(key, value) for key, value in _flatten(run.report).items()]
    for name, t in (run.summary.get("targets") or {}).items():
        rows += [(f"target {name} ({t.get('kind')}, weight {t.get('weight')}): {key}", t[key])
                 for key in ("learned", "random_mean", "random_std", "gap_std")
                 if t.get(key) is not None]
    return pd.DataFrame(rows, columns=["name", "value"])


def oof_predictions(run: MetaraterRun, seed: int = 0) -> pd.DataFrame:
    """regressor, run_id, actual, predicted: K-fold out-of-fold predictions of the fit-half
    objective (what the regressor learns), as the Meta-rater step saved them."""
    frames = []
    for reg, cv in (run.summary.get("cv") or {}).items():
        oof = cv.get("oof") if isinstance(cv, dict) else None
        if isinstance(oof, dict) and {"fit", "predicted"} <= set(oof):
            frames.append(pd.DataFrame({"regressor": reg, "run_id": oof.get("run_id"),
                                        "actual": oof["fit"], "predicted": oof["predicted"]}))
    if not frames:
        return pd.DataFrame(columns=["regressor", "run_id", "actual", "predicted"])
    return pd.concat(frames, ignore_index=True)


def learned_weights(run: MetaraterRun) -> pd.DataFrame:
    """score, weight (signed: negative = lower is better), importance (regressor's share)."""
    source = run.weights_file or run.summary.get("learned") or {}
    weights = source.get("weights") or {}
    importance = source.get("importance") or {}
    df = pd.DataFrame({"score": list(weights), "weight": [float(v) for v in weights.values()],
                       "importance": [float(importance.get(k, np.nan)) for k in weights]})
    return df.sort_values(["weight", "score"], ascending=[False, True],
                          kind="stable").reset_index(drop=True)


def baselines(run: MetaraterRun) -> pd.DataFrame:
    """label, kind, loss, lo, hi: the report-half objective of the learned weights and the
    baselines, each with ± 2 noise std (the larger of random-draw and seed spread)."""
    s, rep = run.summary, run.report
    noise = float(rep.get("noise_std") or 0.0)
    runs = s.get("runs") or {}
    rows = []
    if rep.get("learned") is not None:
        rows.append(("learned", "learned", float(rep["learned"]), noise))
    if rep.get("random_mean") is not None:
        rows.append(("random (mean of draws)", "random", float(rep["random_mean"]), noise))
    if (runs.get("equal") or {}).get("report") is not None:
        rows.append(("equal", "equal", float(runs["equal"]["report"]), noise))
    singles = sorted((v["report"], k) for k, v in runs.items()
                     if v.get("kind") == "single" and v.get("report") is not None)
    rows += [(k, "single", float(v), noise) for v, k in singles[:TOP_SINGLES]]
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
    objective follows mere document length (every run holds the same tokens per domain, so a
    selection of long documents has fewer of them)."""
    cols = ["run_id", "kind", "docs", "tokens", "tokens_per_doc", "loss"]
    runs = run.summary.get("runs") or {}
    if run.runs is None or not {"selection_docs", "selection_tokens"} <= set(run.runs.columns):
        return pd.DataFrame(columns=cols)
    df = run.runs[(run.runs["selection_docs"] > 0)
                  & run.runs["run_id"].map(lambda r: (runs.get(r) or {}).get("report")
                                           is not None)]
    out = pd.DataFrame({
        "run_id": df["run_id"], "kind": df["kind"].str.replace("-repeat", "", regex=False),
        "docs": df["selection_docs"].astype(int), "tokens": df["selection_tokens"].astype(int),
        "tokens_per_doc": df["selection_tokens"] / df["selection_docs"],
        "loss": [float(runs[r]["report"]) for r in df["run_id"]]})
    return out.reset_index(drop=True)


def held_out_families(run: MetaraterRun) -> pd.DataFrame:
    """family, then per weighting (learned, equal, single): the gap to random in noise std
    on the family's report half with its 90% bootstrap interval -- for weights fitted
    without that family (``summary.json`` ``families``)."""
    rows = []
    for family, entry in (run.summary.get("families") or {}).items():
        row: dict[str, Any] = {"family": family}
        for method in ("learned", "equal", "single"):
            g = entry.get(method) or {}
            lo, hi = (g.get("gap_interval") or [None, None])[:2]
            row[f"{method} gap (std)"] = g.get("gap_std")
            row[f"{method} 90% interval"] = (None if lo is None else f"[{lo:+.1f}, {hi:+.1f}]")
        row["single score"] = (entry.get("single") or {}).get("run_id")
        rows.append(row)
    return pd.DataFrame(rows)


def doc_length_diagnostics(run: MetaraterRun) -> pd.DataFrame:
    """domain, learned docs and median tokens vs the random selections' (same tokens)."""
    per_domain = (run.summary.get("document_lengths") or {}).get("per_domain") or {}
    rows = [{"domain": d, **e} for d, e in sorted(per_domain.items())]
    return pd.DataFrame(rows)


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
