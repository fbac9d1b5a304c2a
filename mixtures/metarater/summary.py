"""The Meta-rater summary: learned weights vs baselines, regressor CV, and seed noise.

The seed-noise figures decide how far the ranking can be trusted: if repeating one
configuration with other seeds moves the loss as much as switching weight vectors does,
the regressor is fitting noise and the summary says so.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

SEED0_KINDS = ("dirichlet", "equal", "single", "random", "learned")


def _loss(row: dict[str, Any] | None, target: str) -> float | None:
    if row is None or row["status"] != "ok":
        return None
    return float(row["mean_loss"] if target == "mean" else json.loads(row["losses"])[target])


def build_summary(*, planned: Sequence[Any], rows: dict[str, dict[str, Any]], target: str,
                  cv: dict[str, Any], learned_id: str, predicted_loss: float,
                  importance: dict[str, float], budget: int | None, names: list[str],
                  seconds: float, config: dict[str, Any]) -> dict[str, Any]:
    loss = {p.run_id: _loss(rows.get(p.run_id), target) for p in planned}
    ranked = sorted((v, k) for k, v in loss.items() if v is not None
                    and next(p.kind for p in planned if p.run_id == k) in SEED0_KINDS)
    rank = {k: i + 1 for i, (_, k) in enumerate(ranked)}
    dirichlet = np.array([loss[p.run_id] for p in planned
                          if p.kind == "dirichlet" and loss[p.run_id] is not None])
    baselines = {p.run_id: loss[p.run_id] for p in planned
                 if p.kind in ("equal", "single", "random")}
    groups: dict[str, list[float]] = {}
    for p in planned:
        base = p.run_id.split("@")[0]
        if any(q.run_id.startswith(base + "@") for q in planned) and loss[p.run_id] is not None:
            groups.setdefault(base, []).append(loss[p.run_id])
    stds = {k: float(np.std(v, ddof=1)) for k, v in groups.items() if len(v) > 1}
    pooled = math.sqrt(float(np.mean([s ** 2 for s in stds.values()]))) if stds else None
    spread = float(np.std(dirichlet, ddof=1)) if len(dirichlet) > 1 else None
    learned = loss[learned_id]
    verdicts = []
    if pooled is not None and spread is not None and pooled >= 0.5 * spread:
        verdicts.append(f"seed noise (std {pooled:.4g}) is at least half the spread of the "
                        f"Dirichlet runs' losses (std {spread:.4g}): rankings are noise-bound")
    if pooled is not None and learned is not None:
        close = sorted(k for k, v in baselines.items()
                       if v is not None and abs(v - learned) < 2 * pooled)
        if close:
            verdicts.append(f"learned is within 2 seed-noise std ({2 * pooled:.4g}) of: "
                            + ", ".join(close) + " (differences there are not significant)")
        rand = baselines.get("random")
        if rand is not None and rand < learned - 2 * pooled:
            verdicts.append(f"random selection beats the learned weights by {learned - rand:.4g}"
                            " (> 2 seed-noise std): on this validation split, staying close to"
                            " the corpus distribution matters more than these scores' quality")
    failed = {k: r["error"] for k, r in rows.items() if r["status"] != "ok"}
    under = sorted(k for k, r in rows.items() if budget and r["status"] == "ok"
                   and r["selection_tokens"] < budget)
    return {
        "target": target, "scores": names, "token_budget": budget, "seconds": seconds,
        "n_runs": len(rows), "n_failed": len(failed), "failed": failed,
        "under_budget": under,
        "k": sum(1 for p in planned if p.kind == "dirichlet"),
        "cv": {k: v.as_dict() | {"rmse": math.sqrt(v.mse)} for k, v in cv.items()},
        "learned": {"run_id": learned_id, "loss": learned, "predicted_loss": predicted_loss,
                    "rank": rank.get(learned_id), "of": len(ranked),
                    "weights": next(p.weights for p in planned if p.run_id == learned_id),
                    "importance": importance},
        "baselines": baselines,
        "dirichlet": ({"best": float(dirichlet.min()), "median": float(np.median(dirichlet)),
                       "worst": float(dirichlet.max()), "std": spread} if len(dirichlet) else {}),
        "seed_noise": {"per_config_std": stds, "pooled_std": pooled, "losses": groups},
        "ranks": rank, "verdicts": verdicts, "config": config,
    }


def _fmt(v: float | None) -> str:
    return "failed" if v is None else f"{v:.4f}"


def print_summary(summary: dict[str, Any], console: Console) -> None:
    learned = summary["learned"]
    table = Table(title=f"Meta-rater: proxy validation loss ({summary['target']}, nats/token)")
    for col in ("run", "loss", "vs learned", "rank"):
        table.add_column(col, justify="left" if col == "run" else "right")
    rows = [("learned", learned["run_id"], learned["loss"])]
    rows += [(k, k, v) for k, v in sorted(summary["baselines"].items(),
                                          key=lambda kv: (kv[1] is None, kv[1] or 0))]
    for label, run_id, value in rows:
        delta = ("" if value is None or learned["loss"] is None or label == "learned"
                 else f"{value - learned['loss']:+.4f}")
        table.add_row(label, _fmt(value), delta, str(summary["ranks"].get(run_id, "-")))
    d = summary["dirichlet"]
    if d:
        table.add_row(f"dirichlet (K={summary['k']}) best/median", f"{d['best']:.4f} / "
                      f"{d['median']:.4f}", "", "")
    console.print(table)
    cv = summary["cv"]
    console.print(f"K-fold Spearman (predicted vs actual): LightGBM "
                  f"{cv['lightgbm']['spearman']:.3f} (RMSE {cv['lightgbm']['rmse']:.4g}), "
                  f"ridge {cv['ridge']['spearman']:.3f} (RMSE {cv['ridge']['rmse']:.4g})")
    noise = summary["seed_noise"]["pooled_std"]
    console.print(f"seed noise: pooled std {'n/a' if noise is None else f'{noise:.4g}'}; "
                  f"Dirichlet loss std {d.get('std') or float('nan'):.4g}; learned rank "
                  f"{learned['rank']} of {learned['of']}; predicted {learned['predicted_loss']:.4f}"
                  f" vs actual {_fmt(learned['loss'])}")
    for line in summary["verdicts"]:
        console.print(f"[yellow]note:[/] {line}")
    if summary["under_budget"]:
        console.print(f"{len(summary['under_budget'])} runs selected fewer tokens than the "
                      f"budget ({summary['token_budget']}) and trained on all they had")
    if summary["n_failed"]:
        console.print(f"[red]{summary['n_failed']} runs failed[/] (errors in runs.parquet)")
