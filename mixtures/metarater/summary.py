"""The Meta-rater verdict: each weighting against random selections, per held-out family.

Every figure here is measured on the *report* half of the targets, which no regressor saw,
and -- per family -- for weights fitted without that family. Values are the families'
z-scores against the random selections (``families``); a gap is in noise std, noise = the
larger of the random draws' spread and the seed repeats' spread, with a bootstrap interval
over the random draws. A difference smaller than two noise std is not a finding.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from metamix.mixtures.metarater.families import (
    FamilyScale,
    Gap,
    family_table,
    gap,
    seed_std,
)
from metamix.mixtures.metarater.lofo import Decision
from metamix.mixtures.metarater.plan import RANKED_KINDS, PlannedRun
from metamix.mixtures.metarater.selection_report import length_diagnostics, source_diagnostics
from metamix.mixtures.metarater.targets import TargetSpec, objective, target_values

#: a weighting must beat random by this many noise std on a family to count as better
SIGNIFICANT_STD = 2.0
#: the planned runs every judged run is ranked among
POOL_KINDS = ("dirichlet", "equal", "single", "random")


def run_values(targets: list[TargetSpec], row: Mapping[str, Any] | None
               ) -> dict[str, dict[str, float]] | None:
    """Per half: each target's value and the weighted objective; None for a failed run."""
    if row is None or row.get("status") != "ok":
        return None
    losses = json.loads(row["losses"])
    metrics = json.loads(row["metrics"]) if row.get("metrics") else None
    out = {}
    for half in ("fit", "report"):
        values = target_values(targets, losses, metrics, half)
        out[half] = {**values, "objective": objective(targets, values)}
    return out


class _Judge:
    """Gaps of any run on any family's report half, against the same random draws."""

    def __init__(self, planned: Sequence[PlannedRun], report: Mapping[str, Mapping[str, float]],
                 families: Sequence[str], seed: int, n_boot: int) -> None:
        self.report = report
        self.random_ids = [p.run_id for p in planned if p.kind == "random"
                           and p.run_id in report]
        self.pool = [p.run_id for p in planned if p.kind in POOL_KINDS and p.run_id in report]
        self.seed_std = {f: seed_std(self._repeats(planned, f)) for f in families}
        self.seed = seed
        self.n_boot = n_boot

    def _repeats(self, planned: Sequence[PlannedRun], family: str) -> dict[str, list[float]]:
        groups: dict[str, list[float]] = {}
        bases = {p.run_id.split("@")[0] for p in planned if "@" in p.run_id}
        for p in planned:
            base = p.run_id.split("@")[0]
            if base in bases and p.run_id in self.report:
                groups.setdefault(base, []).append(self.report[p.run_id][family])
        return groups

    def __call__(self, run_id: str | None, family: str) -> Gap | None:
        if run_id is None or run_id not in self.report:
            return None
        rng = np.random.default_rng([self.seed, len(family), *family.encode()])
        return gap(self.report[run_id][family],
                   [self.report[r][family] for r in self.random_ids], self.seed_std[family],
                   [self.report[r][family] for r in self.pool if r != run_id],
                   rng=rng, n_boot=self.n_boot)


def best_worst_family(report: Mapping[str, Mapping[str, float]], random_ids: Sequence[str],
                      runs: Sequence[str], families: Sequence[str]) -> dict[str, Any] | None:
    """The run whose worst family gap (in random std) is best: how close any weighting the
    sweep tried comes to beating random on every family at once."""
    if len(random_ids) < 2 or not runs:
        return None
    r = np.array([[report[i][f] for f in families] for i in random_ids])
    mean, sd = r.mean(axis=0), r.std(axis=0, ddof=1)
    sd[sd == 0] = 1.0
    worst = {run: float(np.max((np.array([report[run][f] for f in families]) - mean) / sd))
             for run in runs if run in report}
    best = min(worst, key=lambda k: (worst[k], k))
    return {"run_id": best, "worst_gap_std": worst[best],
            "runs_better_on_every_family": sum(1 for v in worst.values()
                                               if v <= -SIGNIFICANT_STD)}


def _mean_gap(gaps: Sequence[Gap | None]) -> float | None:
    vals = [g.gap_std for g in gaps if g is not None]
    return float(np.mean(vals)) if vals and len(vals) == len(gaps) else None


def _held_out(judge: _Judge, decision: Decision, families: Sequence[str]
              ) -> tuple[dict[str, Any], dict[str, float | None]]:
    """Per family: learned (fitted without it), equal, best single (chosen without it)."""
    in_family = not decision.held_out
    rows: dict[str, Any] = {}
    per_method: dict[str, list[Gap | None]] = {"learned": [], "equal": [], "single": []}
    for f in families:
        learned_id = decision.learned_id if in_family else decision.held_out[f]
        single_id = decision.single_id if in_family else decision.held_out_single.get(f)
        gaps = {"learned": judge(learned_id, f), "equal": judge(decision.equal_id, f),
                "single": judge(single_id, f)}
        for k, g in gaps.items():
            per_method[k].append(g)
        rows[f] = {k: (None if g is None else g.as_dict()) for k, g in gaps.items()}
        rows[f]["learned"] = {**(rows[f]["learned"] or {}), "run_id": learned_id,
                              "shrinkage": decision.held_out_amount.get(f, decision.amount)}
        rows[f]["single"] = {**(rows[f]["single"] or {}), "run_id": single_id}
    return rows, {k: _mean_gap(v) for k, v in per_method.items()}


def _shipped(decision: Decision, means: Mapping[str, float | None],
             planned: Sequence[PlannedRun]) -> dict[str, Any]:
    """The better of learned, equal weights and the best single score on held-out
    families; learned weights shrunk all the way are equal weights."""
    options = {"learned": decision.learned_id, "equal": decision.equal_id,
               "single": decision.single_id}
    scored = [(means[k], k) for k in ("learned", "equal", "single")
              if means.get(k) is not None and options[k] is not None]
    method = min(scored)[1] if scored else "learned"
    run_id = options[method] or decision.learned_id
    if method == "learned" and run_id == decision.equal_id:
        method = "equal"
    weights = next(p.weights for p in planned if p.run_id == run_id)
    return {"method": method, "run_id": run_id, "weights": weights,
            "held_out_mean_gap_std": means.get(method)}


def _verdicts(rows: Mapping[str, Any], means: Mapping[str, float | None],
              shipped: Mapping[str, Any], in_family: bool) -> list[str]:
    out = []
    if in_family:
        out.append("only one target family: the verdict is on its own report half, so it "
                   "cannot tell quality from resemblance to the target; add target families")
    learned, equal = means.get("learned"), means.get("equal")
    if learned is None:
        return [*out, "no verdict: a learned run or the random selections failed"]
    misses = [f for f, r in rows.items()
              if (r["learned"].get("gap_std") or 0.0) > -SIGNIFICANT_STD]
    where = "held-out families" if not in_family else "the report half"
    out.append(f"learned weights vs random on {where}: mean gap {learned:+.1f} noise std"
               + (f" (equal weights {equal:+.1f})" if equal is not None else "")
               + ("; not 2 std better on " + ", ".join(misses) if misses
                  else "; at least 2 std better on every family"))
    if shipped["method"] != "learned":
        label = ("equal weights" if shipped["method"] == "equal"
                 else f"the best single score ({shipped['run_id']})")
        out.append(f"no fitted weighting beats {label} on {where}: shipping {label}")
    return out


def build_summary(*, planned: Sequence[PlannedRun], rows: Mapping[str, Mapping[str, Any]],
                  values: Mapping[str, Any], targets: list[TargetSpec], scale: FamilyScale,
                  families: Mapping[str, Sequence[TargetSpec]], decision: Decision,
                  regressor: str, cv: Mapping[str, Any], predicted: float,
                  importance: dict[str, float], budgets: dict[str, int], names: list[str],
                  directions: Mapping[str, str],
                  selection_stats: Mapping[str, Mapping[str, Any]], config: dict[str, Any],
                  seed: int, n_boot: int) -> dict[str, Any]:
    names_f = list(families)
    report = family_table(values, scale, "report", families)
    fit = family_table(values, scale, "fit", families)
    overall = {k: float(np.mean(list(v.values()))) for k, v in report.items()}
    judge = _Judge(planned, report, names_f, seed, n_boot)
    held_rows, means = _held_out(judge, decision, names_f)
    shipped = _shipped(decision, means, planned)
    kinds = {p.run_id: p.kind for p in planned}
    ranked = sorted((v, k) for k, v in overall.items() if kinds[k] in RANKED_KINDS)
    rank = {k: i + 1 for i, (_, k) in enumerate(ranked)}
    random_ids = judge.random_ids
    rand = [overall[r] for r in random_ids]
    ship_value = overall.get(shipped["run_id"])
    noise = float(np.std(rand, ddof=1))
    per_target = {}
    for t in targets:
        r = [values[i]["report"][t.name] for i in random_ids]
        mine = (values[shipped["run_id"]] or {}).get("report", {}).get(t.name)
        sd = float(np.std(r, ddof=1))
        per_target[t.name] = {
            "kind": t.kind, "family": t.family_name, "weight": t.weight, "shipped": mine,
            "random_mean": float(np.mean(r)), "random_std": sd,
            "gap_std": None if mine is None or sd == 0 else (mine - float(np.mean(r))) / sd}
    lengths = length_diagnostics(selection_stats, shipped["run_id"], random_ids)
    verdicts = _verdicts(held_rows, means, shipped, not decision.held_out)
    if lengths["collapsed_domains"]:
        verdicts.append("the shipped selection keeps fewer than half of a random "
                        "selection's documents (same tokens) in "
                        + ", ".join(lengths["collapsed_domains"]))
    dirichlet = np.array([overall[p.run_id] for p in planned
                          if p.kind == "dirichlet" and p.run_id in overall])
    failed = {k: r["error"] for k, r in rows.items() if r["status"] != "ok"}
    learned_fit = fit.get(decision.learned_id)
    return {
        "families": {f: {"targets": [t.name for t in families[f]], **held_rows[f]}
                     for f in names_f},
        "held_out": {"mean_gap_std": means, "shrinkage": decision.amount,
                     "shrinkage_scores": {f"{a:g}": v
                                          for a, v in decision.shrinkage_scores.items()},
                     "in_family_only": not decision.held_out,
                     "single_id": decision.single_id, "equal_id": decision.equal_id,
                     "best_worst_family": best_worst_family(
                         report, random_ids, [p.run_id for p in planned
                                              if p.kind in POOL_KINDS + ("learned", "lofo")
                                              and p.kind != "random"], names_f)},
        "shipped": shipped,
        "report": {"shipped": shipped["method"], "learned": ship_value,
                   "random_mean": float(np.mean(rand)), "random_std": noise,
                   "noise_std": noise,
                   "gap_std": None if ship_value is None or noise == 0
                   else (ship_value - float(np.mean(rand))) / noise,
                   "rank": rank.get(shipped["run_id"]), "n_runs": len(ranked),
                   "cv_spearman": {k: v["report_spearman"] for k, v in cv.items()}},
        "targets": per_target,
        "learned": {"run_id": decision.learned_id, "predicted_fit": predicted,
                    "fit": None if learned_fit is None else float(np.mean(list(
                        learned_fit.values()))),
                    "weights": next(p.weights for p in planned
                                    if p.run_id == decision.learned_id),
                    "shrinkage": decision.amount, "importance": importance,
                    "regressor": regressor},
        "cv": {k: {**v, "rmse": float(np.sqrt(v["mse"]))} for k, v in cv.items()},
        "runs": {p.run_id: {"kind": p.kind, "report": overall.get(p.run_id),
                            "fit": (float(np.mean(list(fit[p.run_id].values())))
                                    if p.run_id in fit else None),
                            "families": report.get(p.run_id), "rank": rank.get(p.run_id)}
                 for p in planned},
        "dirichlet": ({"best": float(dirichlet.min()), "median": float(np.median(dirichlet)),
                       "worst": float(dirichlet.max()),
                       "std": float(np.std(dirichlet, ddof=1)) if len(dirichlet) > 1 else None}
                      if len(dirichlet) else {}),
        "seed_noise": {"per_family_std": judge.seed_std},
        "document_lengths": lengths,
        "sources": source_diagnostics(selection_stats, shipped["run_id"], random_ids),
        "budget_tokens": budgets, "scores": names, "directions": dict(directions),
        "k": sum(1 for p in planned if p.kind == "dirichlet"), "n_random": len(random_ids),
        "n_failed": len(failed), "failed": failed, "verdicts": verdicts, "config": config,
    }
