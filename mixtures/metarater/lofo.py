"""Leave-one-family-out: weights fitted on some kinds of text, judged on another.

Weights fitted to one target learn what that target *looks like*: a selection drifts
towards the corpus sources that resemble it. So every weighting is judged on a family of
targets its fit never saw: for each family F, the regressor learns the combined objective of
the other families' fit halves, the search finds weights, and those weights -- shrunk
towards equal weights by each amount on the grid -- train proxies that are judged on F's
report half. The shrinkage is the one with the best held-out score (for F's own verdict,
chosen without F), and a weighting ships only if its held-out score beats equal weights and
the best single score; otherwise the better of those two ships.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from metamix.mixtures.metarater.fit import (
    CVScore,
    SearchResult,
    cross_validate,
    make_regressor,
    search_weights,
)
from metamix.mixtures.metarater.plan import PlannedRun

FamilyValues = Mapping[str, Mapping[str, float]]    # run -> family -> value (lower = better)


@dataclass(frozen=True)
class Fitted:
    """A regressor fitted on one objective and the weights its search found."""

    features: np.ndarray
    predicted: float
    regressor: str
    cv: dict[str, CVScore]
    model: Any
    y: np.ndarray                          # the objective it was fitted on
    y_report: np.ndarray | None = None     # the same runs' report-half objective


def fit_weights(x: np.ndarray, y: np.ndarray, sampler: Callable[[np.random.Generator, int],
                                                                 np.ndarray],
                *, folds: int, seed: int, n_search_samples: int, top_k: int,
                lgbm_params: dict[str, Any] | None = None,
                y_report: np.ndarray | None = None) -> Fitted:
    """Cross-validate LightGBM and ridge on (features, objective), search with the better."""
    cv = {kind: cross_validate(x, y, kind, folds=folds, seed=seed,
                               params=lgbm_params if kind == "lightgbm" else None,
                               y_report=y_report)
          for kind in ("lightgbm", "ridge")}
    regressor = max(cv, key=lambda k: np.nan_to_num(cv[k].spearman, nan=-1.0))
    model = make_regressor(regressor, seed, lgbm_params if regressor == "lightgbm" else None)
    model.fit(x, y)
    found: SearchResult = search_weights(model, sampler, n_samples=n_search_samples,
                                         top_k=top_k, seed=seed + 1)
    return Fitted(found.features, found.predicted_loss, regressor, cv, model, y, y_report)


def shrink(features: np.ndarray, equal: np.ndarray, amount: float) -> np.ndarray:
    """``(1 - amount) * features + amount * equal``, rescaled to |.| summing to 1."""
    mixed = (1.0 - amount) * features + amount * equal
    total = np.abs(mixed).sum()
    return mixed / total if total > 0 else equal


@dataclass
class Holdout:
    """One held-out family: the weights fitted without it and the run of each shrinkage."""

    family: str
    fitted: Fitted
    runs: dict[float, str] = field(default_factory=dict)   # shrinkage -> run id


def held_out_score(report: FamilyValues, holdouts: Sequence[Holdout], amount: float,
                   exclude: str | None = None) -> float:
    """Mean over held-out families (but ``exclude``) of their value at ``amount``."""
    values = [report[h.runs[amount]][h.family] for h in holdouts
              if h.family != exclude and h.runs.get(amount) in report]
    return float(np.mean(values)) if values else float("inf")


def choose_shrinkage(report: FamilyValues, holdouts: Sequence[Holdout],
                     amounts: Sequence[float], exclude: str | None = None) -> float:
    """The amount with the best held-out score; ties go to the larger (closer to equal)."""
    return min(sorted(amounts, reverse=True),
               key=lambda a: held_out_score(report, holdouts, a, exclude))


def best_single(fit: FamilyValues, singles: Sequence[str], families: Sequence[str],
                combine: Callable[[Mapping[str, float], Sequence[str]], float]) -> str | None:
    """The single-score run with the best objective over ``families`` (fit halves)."""
    scored = [(combine(fit[s], families), s) for s in singles if s in fit]
    return min(scored)[1] if scored else None


MakeRun = Callable[[str, str, np.ndarray], PlannedRun]   # (run id stem, kind, features)


@dataclass
class HeldOutPlan:
    """The runs that judge fitted weights: per held-out family and for the final fit (on
    every family), one per shrinkage amount; equal weights stand for amount 1."""

    holdouts: list[Holdout]
    final: Fitted
    finals: dict[float, PlannedRun]
    extra: list[PlannedRun]
    equal_id: str | None

    def runs(self) -> list[PlannedRun]:
        return [*self.extra, *self.finals.values()]

    @property
    def amounts(self) -> list[float]:
        return [*self.finals, *([1.0] if self.equal_id is not None else [])]


def plan_held_out(families: Sequence[str], fit_on: Callable[..., Fitted],
                  equal: PlannedRun | None, equal_features: np.ndarray | None,
                  shrinkage: Sequence[float], make_run: MakeRun) -> HeldOutPlan:
    """Fit without each family (when there are two or more) and on all of them; plan a run
    for each fit at each shrinkage amount."""
    amounts = list(shrinkage) if equal_features is not None else [0.0]

    def shrunk(fitted: Fitted, amount: float) -> np.ndarray:
        return (fitted.features if equal_features is None
                else shrink(fitted.features, equal_features, amount))

    holdouts, extra = [], []
    for family in families if len(families) >= 2 else []:
        holdout = Holdout(family, fit_on([f for f in families if f != family]))
        for amount in amounts:
            run = make_run(f"lofo-{family}-s{amount:g}", "lofo", shrunk(holdout.fitted, amount))
            holdout.runs[amount] = run.run_id
            extra.append(run)
        if equal is not None:
            holdout.runs[1.0] = equal.run_id
        holdouts.append(holdout)
    final = fit_on(list(families), report=True)
    finals = {a: make_run(f"learned-s{a:g}", "learned", shrunk(final, a)) for a in amounts}
    return HeldOutPlan(holdouts, final, finals, extra, equal.run_id if equal else None)


@dataclass(frozen=True)
class Decision:
    """What the held-out families chose (run ids; ``held_out`` per held-out family)."""

    amount: float                            # shrinkage of the shipped learned weights
    learned_id: str                          # fitted on every family, shrunk by ``amount``
    single_id: str | None                    # best single score on every family's fit half
    equal_id: str | None
    held_out: dict[str, str] = field(default_factory=dict)         # family -> learned run
    held_out_amount: dict[str, float] = field(default_factory=dict)  # family -> shrinkage
    held_out_single: dict[str, str | None] = field(default_factory=dict)
    shrinkage_scores: dict[float, float] = field(default_factory=dict)


def decide(plan: HeldOutPlan, report: FamilyValues, fit: FamilyValues, singles: Sequence[str],
           combine: Callable[[Mapping[str, float], Sequence[str]], float]) -> Decision:
    """Shrinkage by the held-out score (each family's own verdict chosen without it), and
    the single score each held-out family would have been given."""
    holdouts, amounts = plan.holdouts, plan.amounts
    families = [h.family for h in holdouts]
    every = families or list(next(iter(fit.values()), {}))
    amount = choose_shrinkage(report, holdouts, amounts) if holdouts else min(plan.finals)
    own = {h.family: choose_shrinkage(report, holdouts, amounts, exclude=h.family)
           for h in holdouts}
    return Decision(
        amount=amount,
        learned_id=(plan.equal_id if amount == 1.0 and plan.equal_id
                    else plan.finals[amount].run_id),
        single_id=best_single(fit, singles, every, combine),
        equal_id=plan.equal_id,
        held_out={h.family: h.runs[own[h.family]] for h in holdouts},
        held_out_amount=own,
        held_out_single={f: best_single(fit, singles, [g for g in families if g != f],
                                        combine) for f in families},
        shrinkage_scores={a: held_out_score(report, holdouts, a) for a in amounts}
        if holdouts else {})
