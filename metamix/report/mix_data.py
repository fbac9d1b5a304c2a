"""The domain-mixture search, read from ``out/<run>/mix/`` and ``out/<run>/mixture/``.

Surrogate out-of-fold predictions are read from ``mix/surrogate_oof.parquet`` when the mix
step saves them (columns ``surrogate`` — e.g. ``gp+mde`` —, ``run_id``, ``actual``,
``predicted``); until then the cheap surrogates are refitted here on ``mix/runs.parquet``
with the run's folds and seed. The GP is not refitted: it costs minutes on two cores.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metamix.report.runfiles import read_json, read_table

#: Surrogates refitted for the out-of-fold figure when none were saved (< 1 s each; the
#: RegMix LightGBM, 1000 trees per domain and fold, takes seconds and cannot split on tens
#: of runs anyway).
CHEAP_SURROGATES = ("linear", "loglinear")
#: Run kinds the surrogates are fitted on (the final run is the answer, not training data).
FIT_KINDS = ("sample", "bo")
MDE_SUFFIX = "+mde"


@dataclass
class MixRun:
    mixture: dict[str, Any] | None      # mixture/weights.json
    runs: pd.DataFrame | None           # mix/runs.parquet, in the order the runs were made
    attempts: pd.DataFrame | None       # mix/attempts.parquet
    saved_oof: pd.DataFrame | None      # mix/surrogate_oof.parquet

    def domains(self) -> list[str]:
        if self.runs is None:
            return []
        return [c.removeprefix("w_") for c in self.runs.columns if c.startswith("w_")]

    def val_domains(self) -> list[str]:
        if self.runs is None:
            return []
        return [c.removeprefix("loss_") for c in self.runs.columns if c.startswith("loss_")]

    def objective_weights(self) -> np.ndarray:
        """Weights of the validation-domain losses in the objective (equal by default)."""
        vals = self.val_domains()
        spec = ((self.mixture or {}).get("objective") or {}).get("weights") or {}
        w = np.array([float(spec.get(v, 1.0 if not spec else 0.0)) for v in vals])
        return w / w.sum() if w.sum() > 0 else np.full(len(vals), 1 / max(len(vals), 1))

    def objective(self, rows: pd.DataFrame) -> np.ndarray:
        losses = rows[[f"loss_{v}" for v in self.val_domains()]].to_numpy(np.float64)
        return losses @ self.objective_weights()


def load(run_dir: Path) -> MixRun | None:
    mixture = read_json(run_dir / "mixture" / "weights.json")
    runs = read_table(run_dir / "mix" / "runs.parquet")
    if mixture is None and runs is None:
        return None
    return MixRun(mixture, runs, read_table(run_dir / "mix" / "attempts.parquet"),
                  read_table(run_dir / "mix" / "surrogate_oof.parquet"))


def weights_vs_prior(mix: MixRun) -> pd.DataFrame:
    """domain, chosen, prior, cap, tokens, epochs — from mixture/weights.json."""
    per = (mix.mixture or {}).get("per_domain") or {}
    rows = [{"domain": d, "chosen": v.get("weight"), "prior": v.get("prior"),
             "cap": v.get("cap"), "tokens": v.get("tokens"), "epochs": v.get("epochs")}
            for d, v in sorted(per.items())]
    return pd.DataFrame(rows, columns=["domain", "chosen", "prior", "cap", "tokens", "epochs"])


def search_trace(mix: MixRun) -> pd.DataFrame:
    """step, run_id, kind, objective, best_so_far, proxy_seconds (cumulative cost of every
    attempt up to this run's, failures included) — the runs in the order they were made."""
    cols = ["step", "run_id", "kind", "objective", "best_so_far", "proxy_seconds"]
    if mix.runs is None or mix.runs.empty or not mix.val_domains():
        return pd.DataFrame(columns=cols)
    df = pd.DataFrame({"run_id": mix.runs["run_id"], "kind": mix.runs["kind"],
                       "objective": mix.objective(mix.runs)})
    df.insert(0, "step", np.arange(1, len(df) + 1))
    searched = df["kind"] != "final"
    df["best_so_far"] = df["objective"].where(searched).cummin()
    df.loc[~searched, "best_so_far"] = np.nan
    df["proxy_seconds"] = np.nan
    a = mix.attempts
    if a is not None and {"run_id", "seconds"} <= set(a.columns):
        cum = a["seconds"].fillna(0).cumsum()
        last = {r: float(c) for r, c in zip(a["run_id"], cum, strict=True)}
        df["proxy_seconds"] = [last.get(r, np.nan) for r in df["run_id"]]
    return df[cols]


def surrogate_kfold(mix: MixRun) -> pd.DataFrame:
    """surrogate, features (weights / weights + MDE), spearman, mse, chosen — the K-fold
    table the mix step wrote, every surrogate included."""
    table = (mix.mixture or {}).get("surrogate_kfold") or {}
    chosen = ((mix.mixture or {}).get("provenance") or {}).get("surrogate")
    rows = [{"surrogate": label.removesuffix(MDE_SUFFIX),
             "features": "weights + MDE" if label.endswith(MDE_SUFFIX) else "weights",
             "spearman": v.get("spearman"), "mse": v.get("mse"), "chosen": label == chosen}
            for label, v in sorted(table.items()) if isinstance(v, dict)]
    return pd.DataFrame(rows, columns=["surrogate", "features", "spearman", "mse", "chosen"])


def _fit_rows(mix: MixRun) -> pd.DataFrame:
    """The runs the surrogates were fitted on, in the order the mix step fitted them."""
    runs = mix.runs
    used = ((mix.mixture or {}).get("provenance") or {}).get("runs_used")
    if used:
        by_id = runs.set_index("run_id")
        return by_id.loc[[r for r in used if r in by_id.index]].reset_index()
    return runs[runs["kind"].isin(FIT_KINDS)].reset_index(drop=True)


def surrogate_oof(mix: MixRun, *, folds: int, seed: int,
                  names: tuple[str, ...] = CHEAP_SURROGATES) -> pd.DataFrame:
    """surrogate, features, run_id, actual, predicted: out-of-fold objective predictions of
    each surrogate with and without MDE features (saved, or refitted as the mix step's
    K-fold does: same permutation, multi-target, objective-weighted)."""
    cols = ["surrogate", "features", "run_id", "actual", "predicted"]
    if mix.saved_oof is not None and {"surrogate", "actual", "predicted"} <= set(
            mix.saved_oof.columns):
        df = mix.saved_oof.copy()
        df["features"] = np.where(df["surrogate"].str.endswith(MDE_SUFFIX), "weights + MDE",
                                  "weights")
        df["surrogate"] = df["surrogate"].str.removesuffix(MDE_SUFFIX)
        return df.reindex(columns=cols)
    if mix.runs is None or not mix.domains() or not mix.val_domains():
        return pd.DataFrame(columns=cols)
    from metamix.mixtures.mix.surrogates import MultiTargetSurrogate, make_surrogate

    rows = _fit_rows(mix)
    if len(rows) < max(folds, 3) + 1:
        return pd.DataFrame(columns=cols)
    weights = rows[[f"w_{d}" for d in mix.domains()]].to_numpy(np.float64)
    losses = rows[[f"loss_{v}" for v in mix.val_domains()]].to_numpy(np.float64)
    mde_cols = [f"mde_{v}" for v in mix.val_domains()]
    tw = mix.objective_weights()
    y = losses @ tw
    perm = np.random.default_rng(seed).permutation(len(y))
    frames = []
    for name in names:
        for with_mde in (False, True):
            if with_mde and not set(mde_cols) <= set(rows.columns):
                continue
            x = np.hstack([weights, rows[mde_cols].to_numpy(np.float64)]) if with_mde \
                else weights
            pred = np.empty_like(y)
            for held in np.array_split(perm, folds):
                train = np.setdiff1d(np.arange(len(y)), held)
                model = MultiTargetSurrogate(
                    lambda name=name: make_surrogate(name, n_weights=weights.shape[1]), tw)
                pred[held] = model.fit(x[train], losses[train]).predict(x[held])
            frames.append(pd.DataFrame({
                "surrogate": name, "features": "weights + MDE" if with_mde else "weights",
                "run_id": rows["run_id"], "actual": y, "predicted": pred}))
    return pd.concat(frames, ignore_index=True)[cols]


def final_losses(mix: MixRun) -> pd.DataFrame:
    """domain, predicted, actual: the chosen mixture's per-validation-domain losses."""
    m = mix.mixture or {}
    pred, act = m.get("predicted_losses") or {}, m.get("actual_proxy_losses") or {}
    doms = sorted(set(pred) | set(act))
    return pd.DataFrame({"domain": doms, "predicted": [pred.get(d) for d in doms],
                         "actual": [act.get(d) for d in doms]})
