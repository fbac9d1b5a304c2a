"""The Meta-rater verdict: learned weights against random selections, on the report half.

Every figure here is measured on the *report* half of the targets, which the regressor never
saw. Noise is the larger of two spreads: independent random selections (which documents) and
seed repeats of one configuration (the trainer's own randomness); a difference smaller than
two of it is not a finding.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from metamix.mixtures.metarater.plan import RANKED_KINDS, PlannedRun
from metamix.mixtures.metarater.targets import TargetSpec, objective, target_values

#: A domain whose learned selection keeps fewer documents than this share of a random
#: selection's (same tokens) has collapsed onto a few long documents.
COLLAPSE_RATIO = 0.25


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


def _std(values: Sequence[float]) -> float | None:
    return float(np.std(values, ddof=1)) if len(values) > 1 else None


def _seed_noise(planned: Sequence[PlannedRun], report: Mapping[str, float | None]
                ) -> tuple[float | None, dict[str, float]]:
    groups: dict[str, list[float]] = {}
    for p in planned:
        base = p.run_id.split("@")[0]
        value = report.get(p.run_id)
        if value is not None and any(q.run_id.startswith(base + "@") for q in planned):
            groups.setdefault(base, []).append(value)
    stds = {k: float(np.std(v, ddof=1)) for k, v in groups.items() if len(v) > 1}
    pooled = math.sqrt(float(np.mean([s ** 2 for s in stds.values()]))) if stds else None
    return pooled, stds


def _length_diagnostics(stats: Mapping[str, Mapping[str, Any]], learned_id: str,
                        random_ids: Sequence[str]) -> dict[str, Any]:
    """Docs and median document length per domain: learned vs the mean of random draws."""
    learned = stats.get(learned_id, {})
    domains = sorted({d for s in stats.values() for d in s.get("docs", {})})
    per_domain = {}
    collapsed = []
    for d in domains:
        rand_docs = [stats[r]["docs"].get(d, 0) for r in random_ids if r in stats]
        rand_median = [stats[r]["median_tokens"].get(d, 0) for r in random_ids if r in stats]
        entry = {"learned_docs": learned.get("docs", {}).get(d, 0),
                 "learned_median_tokens": learned.get("median_tokens", {}).get(d, 0),
                 "random_docs": float(np.mean(rand_docs)) if rand_docs else None,
                 "random_median_tokens": float(np.mean(rand_median)) if rand_median else None}
        per_domain[d] = entry
        if entry["random_docs"] and entry["learned_docs"] < COLLAPSE_RATIO * entry["random_docs"]:
            collapsed.append(d)
    return {"per_domain": per_domain, "collapsed_domains": collapsed,
            "learned_median_tokens": learned.get("median_all"),
            "random_median_tokens": (float(np.mean([stats[r]["median_all"] for r in random_ids
                                                    if r in stats])) if random_ids else None)}


def build_summary(*, planned: Sequence[PlannedRun], rows: Mapping[str, Mapping[str, Any]],
                  targets: list[TargetSpec], learned_id: str, regressor: str,
                  cv: Mapping[str, Any], predicted: float, importance: dict[str, float],
                  budgets: dict[str, int], names: list[str], directions: Mapping[str, str],
                  selection_stats: Mapping[str, Mapping[str, Any]], config: dict[str, Any]
                  ) -> dict[str, Any]:
    values = {p.run_id: run_values(targets, rows.get(p.run_id)) for p in planned}
    report = {k: (v["report"]["objective"] if v else None) for k, v in values.items()}
    kinds = {p.run_id: p.kind for p in planned}
    ranked = sorted((v, k) for k, v in report.items()
                    if v is not None and kinds[k] in RANKED_KINDS)
    rank = {k: i + 1 for i, (_, k) in enumerate(ranked)}
    random_ids = [p.run_id for p in planned if p.kind == "random"]
    random_vals = [report[r] for r in random_ids if report[r] is not None]
    random_mean = float(np.mean(random_vals)) if random_vals else None
    random_std = _std(random_vals)
    seed_std, per_config = _seed_noise(planned, report)
    noise = max(s for s in (random_std, seed_std, 0.0) if s is not None)
    learned = report.get(learned_id)
    gap = (None if learned is None or random_mean is None or noise <= 0
           else (learned - random_mean) / noise)
    dirichlet = np.array([report[p.run_id] for p in planned
                          if p.kind == "dirichlet" and report[p.run_id] is not None])
    per_target = {}
    for t in targets:
        rand = [values[r]["report"][t.name] for r in random_ids if values[r]]
        mine = values[learned_id]["report"][t.name] if values.get(learned_id) else None
        sd = _std(rand)
        per_target[t.name] = {
            "kind": t.kind, "weight": t.weight, "learned": mine,
            "random_mean": float(np.mean(rand)) if rand else None, "random_std": sd,
            "gap_std": (None if mine is None or not rand or not sd
                        else (mine - float(np.mean(rand))) / sd)}
    verdicts = _verdicts(gap, learned, random_mean, noise, rank.get(learned_id), len(ranked))
    lengths = _length_diagnostics(selection_stats, learned_id, random_ids)
    if lengths["collapsed_domains"]:
        verdicts.append("the learned selection collapses onto a few long documents in "
                        + ", ".join(lengths["collapsed_domains"]) + f" (fewer than "
                        f"{COLLAPSE_RATIO:.0%} of a random selection's documents, same tokens)")
    failed = {k: r["error"] for k, r in rows.items() if r["status"] != "ok"}
    return {
        "report": {"learned": learned, "random_mean": random_mean, "random_std": random_std,
                   "noise_std": noise, "gap_std": gap, "rank": rank.get(learned_id),
                   "n_runs": len(ranked),
                   "cv_spearman": {k: v["report_spearman"] for k, v in cv.items()}},
        "targets": per_target,
        "learned": {"run_id": learned_id, "predicted_fit": predicted,
                    "fit": values[learned_id]["fit"]["objective"] if values[learned_id] else None,
                    "weights": next(p.weights for p in planned if p.run_id == learned_id),
                    "importance": importance, "regressor": regressor},
        "cv": {k: {**v, "rmse": math.sqrt(v["mse"])} for k, v in cv.items()},
        "runs": {p.run_id: {"kind": p.kind, "report": report[p.run_id],
                            "fit": values[p.run_id]["fit"]["objective"] if values[p.run_id]
                            else None, "rank": rank.get(p.run_id)} for p in planned},
        "dirichlet": ({"best": float(dirichlet.min()), "median": float(np.median(dirichlet)),
                       "worst": float(dirichlet.max()), "std": _std(list(dirichlet))}
                      if len(dirichlet) else {}),
        "seed_noise": {"pooled_std": seed_std, "per_config_std": per_config},
        "document_lengths": lengths, "budget_tokens": budgets, "scores": names,
        "directions": dict(directions), "k": sum(1 for p in planned if p.kind == "dirichlet"),
        "n_failed": len(failed), "failed": failed, "verdicts": verdicts, "config": config,
    }


def _verdicts(gap: float | None, learned: float | None, random_mean: float | None,
              noise: float, rank: int | None, n_runs: int) -> list[str]:
    if gap is None or learned is None or random_mean is None:
        return ["no verdict: the learned run or the random selections failed"]
    where = f"rank {rank} of {n_runs}"
    if gap <= -2:
        return [f"the learned weights beat random selection by {-gap:.1f} noise std "
                f"({random_mean - learned:.4g} on the report half; {where})"]
    if gap >= 2:
        return [f"random selection beats the learned weights by {gap:.1f} noise std "
                f"({learned - random_mean:.4g} on the report half; {where}): on these targets "
                "the scores do not pick better data"]
    return [f"the learned weights and random selection differ by {abs(gap):.1f} noise std "
            f"(< 2, std {noise:.4g}; {where}): no significant difference"]


def _fmt(v: float | None, digits: int = 4) -> str:
    return "failed" if v is None else f"{v:.{digits}f}"


def print_summary(summary: dict[str, Any], console: Console) -> None:
    rep = summary["report"]
    runs = summary["runs"]
    noise = rep["noise_std"] or float("nan")
    table = Table(title="Meta-rater on the report half of the targets (objective: lower is "
                  "better)")
    for col in ("run", "objective", "vs random (std)", "rank"):
        table.add_column(col, justify="left" if col == "run" else "right")

    def row(label: str, value: float | None, rank: int | None) -> None:
        delta = ("" if value is None or rep["random_mean"] is None
                 else f"{(value - rep['random_mean']) / noise:+.1f}")
        table.add_row(label, _fmt(value), delta, str(rank or "-"))

    row("learned", rep["learned"], rep["rank"])
    table.add_row("random (mean ± std)", f"{_fmt(rep['random_mean'])} ± "
                  f"{_fmt(rep['random_std'])}", "0.0", "")
    if "equal" in runs:
        row("equal", runs["equal"]["report"], runs["equal"]["rank"])
    d = summary["dirichlet"]
    if d:
        table.add_row(f"dirichlet best / median (K={summary['k']})",
                      f"{d['best']:.4f} / {d['median']:.4f}", "", "")
    singles = sorted((v["report"], k) for k, v in runs.items()
                     if v["kind"] == "single" and v["report"] is not None)
    for value, run_id in singles[:5]:
        row(run_id, value, runs[run_id]["rank"])
    console.print(table)
    targets = Table(title="per target (report half)")
    for col in ("target", "kind", "weight", "learned", "random mean ± std", "gap (std)"):
        targets.add_column(col, justify="left" if col in ("target", "kind") else "right")
    for name, t in summary["targets"].items():
        targets.add_row(name, t["kind"], f"{t['weight']:g}", _fmt(t["learned"]),
                        f"{_fmt(t['random_mean'])} ± {_fmt(t['random_std'])}",
                        "" if t["gap_std"] is None else f"{t['gap_std']:+.1f}")
    console.print(targets)
    lengths = Table(title="documents per domain (same tokens): learned vs random mean")
    for col in ("domain", "learned docs", "median tokens", "random docs", "median tokens "):
        lengths.add_column(col, justify="left" if col == "domain" else "right")
    for domain, e in summary["document_lengths"]["per_domain"].items():
        lengths.add_row(domain, f"{e['learned_docs']:,}", f"{e['learned_median_tokens']:,.0f}",
                        _fmt(e["random_docs"], 1), _fmt(e["random_median_tokens"], 0))
    console.print(lengths)
    cv = summary["cv"]
    console.print("K-fold Spearman (fit-half regressor, out of fold): " + ", ".join(
        f"{k} {v['spearman']:.3f} on fit / {_fmt(v['report_spearman'], 3)} on report"
        for k, v in cv.items()) + f"; search used {summary['learned']['regressor']}")
    seed = summary["seed_noise"]["pooled_std"]
    console.print(f"noise std {noise:.4g} (random draws {_fmt(rep['random_std'], 4)}, seed "
                  f"repeats {'not run' if seed is None else f'{seed:.4g}'}); learned rank "
                  f"{rep['rank']} of {rep['n_runs']}")
    for line in summary["verdicts"]:
        console.print(f"[yellow]verdict:[/] {line}")
    if summary["n_failed"]:
        console.print(f"[red]{summary['n_failed']} runs failed[/] (errors in runs.parquet)")
