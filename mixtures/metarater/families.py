"""Target families: one scale for targets of different units, and verdicts per held-out family.

A text target's loss (nats/token) and a cloze target's answer loss move on different scales,
and a family of many easy targets would outvote one hard family. So every target is first
put on the scale of chance: its z-score against the random selections of the same sweep
(same tokens per domain, same half of the items). A family's value is the weighted mean of
its targets' z-scores; the search objective combines families so that no family can
dominate (``mean_z``: their mean, ``worst_z``: the worst one). Lower is better throughout.

Verdicts hold one family out at a time: its report half against random selections, with
noise = max(spread of the random selections, spread of seed repeats of one configuration)
and a bootstrap interval over the random draws, so a gap never looks surer than the draws
allow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from metamix.mixtures.metarater.targets import CombineKind, TargetSpec

Half = Literal["fit", "report"]
RunValues = Mapping[str, Mapping[str, Mapping[str, float]] | None]   # run -> half -> target


def families_of(targets: Sequence[TargetSpec]) -> dict[str, list[TargetSpec]]:
    """The scoring targets (weight > 0) of each family, families in name order."""
    out: dict[str, list[TargetSpec]] = {}
    for t in targets:
        if t.weight > 0:
            out.setdefault(t.family_name, []).append(t)
    return dict(sorted(out.items()))


@dataclass(frozen=True)
class FamilyScale:
    """Per target and half: the random selections' mean and std (the unit of chance)."""

    mean: dict[str, dict[str, float]]
    std: dict[str, dict[str, float]]

    @classmethod
    def from_random(cls, values: RunValues, random_ids: Sequence[str],
                    targets: Sequence[TargetSpec]) -> FamilyScale:
        rows = [values[r] for r in random_ids if values.get(r)]
        if len(rows) < 2:
            raise ValueError("at least two random selections must succeed to scale targets")
        mean: dict[str, dict[str, float]] = {}
        std: dict[str, dict[str, float]] = {}
        for half in ("fit", "report"):
            mean[half], std[half] = {}, {}
            for t in targets:
                v = np.array([r[half][t.name] for r in rows])   # type: ignore[index]
                mean[half][t.name] = float(v.mean())
                # a target no selection moves carries no information: unit scale, z = 0
                sd = float(v.std(ddof=1))
                std[half][t.name] = sd if sd > 0 else 1.0
        return cls(mean, std)

    def family_values(self, run: Mapping[str, Mapping[str, float]], half: Half,
                      families: Mapping[str, Sequence[TargetSpec]]) -> dict[str, float]:
        """Each family's weighted mean of its targets' z-scores on one half."""
        out = {}
        for name, members in families.items():
            total = sum(t.weight for t in members)
            out[name] = sum(t.weight * (run[half][t.name] - self.mean[half][t.name])
                            / self.std[half][t.name] for t in members) / total
        return out


def combine(values: Mapping[str, float], families: Sequence[str], kind: CombineKind) -> float:
    """The search objective over ``families`` (lower is better)."""
    chosen = [values[f] for f in families]
    return float(max(chosen)) if kind == "worst_z" else float(np.mean(chosen))


def family_table(values: RunValues, scale: FamilyScale, half: Half,
                 families: Mapping[str, Sequence[TargetSpec]]) -> dict[str, dict[str, float]]:
    """run -> family -> value, for every run that succeeded."""
    return {run: scale.family_values(v, half, families) for run, v in values.items() if v}


def gaps_to_random(values: RunValues, targets: Sequence[TargetSpec], random_ids: Sequence[str],
                   runs: Sequence[str], half: Half = "report") -> dict[str, dict[str, float]]:
    """run -> family -> its distance from the random draws' mean in their std (negative =
    better): the quick table the benches print (verdicts use :func:`gap`)."""
    families = families_of(targets)
    table = family_table(values, FamilyScale.from_random(values, random_ids, targets), half,
                         families)
    out = {}
    for run in runs:
        out[run] = {}
        for f in families:
            draws = np.array([table[r][f] for r in random_ids])
            out[run][f] = float((table[run][f] - draws.mean()) / draws.std(ddof=1))
    return out


@dataclass(frozen=True)
class Gap:
    """One run against random on one family: in noise std, with a bootstrap interval."""

    value: float
    random_mean: float
    random_std: float
    noise: float
    gap_std: float
    interval: tuple[float, float]
    rank: int
    n_ranked: int

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "random_mean": self.random_mean,
                "random_std": self.random_std, "noise_std": self.noise,
                "gap_std": self.gap_std, "gap_interval": list(self.interval),
                "rank": self.rank, "n_ranked": self.n_ranked}


def gap(value: float, random_values: Sequence[float], seed_std: float | None,
        ranked: Sequence[float], *, rng: np.random.Generator, n_boot: int = 2000,
        level: float = 0.9) -> Gap:
    """``value`` against the random selections' values: the gap in noise std, noise =
    max(random std, seed std), and a ``level`` bootstrap interval over the random draws."""
    r = np.asarray(random_values, dtype=np.float64)
    sd = float(r.std(ddof=1))
    noise = max(sd, seed_std or 0.0)
    g = (value - float(r.mean())) / noise if noise > 0 else math.nan
    idx = rng.integers(0, len(r), size=(n_boot, len(r)))
    boot = r[idx]
    boot_noise = np.maximum(boot.std(axis=1, ddof=1), seed_std or 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        gaps = (value - boot.mean(axis=1)) / boot_noise
    gaps = gaps[np.isfinite(gaps)]
    tail = (1 - level) / 2
    interval = ((float(np.quantile(gaps, tail)), float(np.quantile(gaps, 1 - tail)))
                if len(gaps) else (math.nan, math.nan))
    rank = 1 + sum(1 for v in ranked if v < value)
    return Gap(value, float(r.mean()), sd, noise, g, interval, rank, len(ranked))


def seed_std(groups: Mapping[str, Sequence[float]]) -> float | None:
    """Pooled std of seed repeats of one configuration (None: no repeats were run)."""
    stds = [float(np.std(v, ddof=1)) for v in groups.values() if len(v) > 1]
    return math.sqrt(float(np.mean([s ** 2 for s in stds]))) if stds else None
