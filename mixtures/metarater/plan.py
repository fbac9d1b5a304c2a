"""Which proxy runs a Meta-rater sweep trains, and how score weights map to features.

Each score column has a direction, declared by the scorer that computes it (or overridden in
the config): ``higher`` and ``lower`` columns enter the combined score with a fixed sign, so
only their magnitude is sampled; ``neutral`` columns (counts, lengths) get a random sign per
sample, and the regressor learns which way, if any, helps. A *feature* is the weight
oriented so that positive means "prefer the declared good end" (for neutral: prefer higher).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from metamix.base.errors import UserError
from metamix.mixtures.metarater.config import Direction, MetaraterConfig

#: Runs the summary ranks against each other: one seed each, no repeats.
RANKED_KINDS = ("dirichlet", "equal", "single", "random", "learned")


@dataclass(frozen=True)
class PlannedRun:
    run_id: str
    kind: str
    weights: dict[str, float]      # signed, as written to a weights file ({} = random order)
    seed: int                      # proxy training seed
    random_order: int | None = None  # seed of the random ranking (random baselines only)


def orientation(names: Sequence[str], directions: Mapping[str, Direction]) -> np.ndarray:
    """+1 where a positive feature means a positive weight, -1 for lower-is-better."""
    return np.array([-1.0 if directions[n] == "lower" else 1.0 for n in names])


def features_to_weights(names: Sequence[str], directions: Mapping[str, Direction],
                        features: np.ndarray) -> dict[str, float]:
    signed = features * orientation(names, directions)
    return {n: float(w) for n, w in zip(names, signed, strict=True)}


def weights_to_features(names: Sequence[str], directions: Mapping[str, Direction],
                        weights: Mapping[str, float]) -> np.ndarray:
    return np.array([weights.get(n, 0.0) for n in names]) * orientation(names, directions)


def sample_features(rng: np.random.Generator, names: Sequence[str],
                    directions: Mapping[str, Direction], alpha: float, size: int
                    ) -> np.ndarray:
    """Dirichlet magnitudes (summing to 1), with a random sign on neutral columns."""
    magnitude = rng.dirichlet(np.full(len(names), alpha), size=size)
    neutral = np.array([directions[n] == "neutral" for n in names])
    signs = np.where(neutral, rng.choice([-1.0, 1.0], size=magnitude.shape), 1.0)
    return magnitude * signs


def plan_runs(names: list[str], directions: Mapping[str, Direction], mcfg: MetaraterConfig,
              seed: int) -> list[PlannedRun]:
    """Dirichlet runs, then baselines: equal weights over the scores with a declared good
    end, each score alone (both ends of a neutral one), and independent random selections;
    seed repeats last."""
    rng = np.random.default_rng(seed)
    runs = [PlannedRun(f"dirichlet-{i:03d}", "dirichlet",
                       features_to_weights(names, directions, f), seed)
            for i, f in enumerate(sample_features(rng, names, directions, mcfg.alpha, mcfg.k))]
    if mcfg.baselines:
        judged = [n for n in names if directions[n] != "neutral"]
        if judged:
            runs.append(PlannedRun("equal", "equal", features_to_weights(
                judged, directions, np.full(len(judged), 1 / len(judged))), seed))
        for n in names:
            if directions[n] == "neutral":
                runs.append(PlannedRun(f"single-{n}+", "single", {n: 1.0}, seed))
                runs.append(PlannedRun(f"single-{n}-", "single", {n: -1.0}, seed))
            else:
                runs.append(PlannedRun(f"single-{n}", "single",
                                       {n: -1.0 if directions[n] == "lower" else 1.0}, seed))
    runs += [PlannedRun(f"random-{i}", "random", {}, seed, random_order=seed + i)
             for i in range(mcfg.random_draws)]
    if mcfg.seed_repeats > 1:
        bases = [p for p in runs if p.kind in ("equal", "dirichlet")][: mcfg.seed_repeat_configs]
        runs += [PlannedRun(f"{b.run_id}@seed{o}", f"{b.kind}-repeat", b.weights, seed + o)
                 for b in bases for o in range(1, mcfg.seed_repeats)]
    return runs


def resolve_directions(columns: Sequence[str], declared: Mapping[str, Direction],
                       overrides: Mapping[str, Direction]) -> dict[str, Direction]:
    """Every column's direction, the config's overrides first; an undeclared column stops
    the run with its name, so no score is silently assumed to be "higher is better"."""
    merged = {**declared, **overrides}
    missing = [c for c in columns if c not in merged]
    if missing:
        raise UserError(
            f"metarater: no direction declared for score column(s) {', '.join(missing)}: "
            "set metarater.directions (higher, lower or neutral) for each, or list the "
            "columns to use in metarater.scores")
    return {c: merged[c] for c in columns}
