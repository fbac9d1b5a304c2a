"""Multi-fidelity mixture-search problems with imperfect cheap fidelities (for mf_search.py).

A problem is a pool of mixtures, each with a known loss at every fidelity level (what a run
would return), and the cost of one run per level in target-run units. Search methods only
see the losses of the (mixture, fidelity) pairs they buy.

* ``synthetic(rho)``: 8 domains, 150 mixtures drawn RegMix-style, target loss of a
  Mixture-of-Data-Experts form -sum_v a_v log(sum_d w_d p_vd) (smooth, convex, optimum
  inside the simplex, the shape real proxy losses have) plus run noise; the cheap fidelity
  (cost 0.1) blends the target's smooth part with an unrelated function of the same form,
  calibrated so its Spearman correlation with the observed target losses is ``rho``
  over the pool (0.9, 0.6, 0.3, 0).
* ``three_fidelity()``: shaped like an instruction-tuning pool of one model family at three
  sizes: 19 domains, 60 mixtures, fidelities 0.18 / 0.48 / 1.0 of the target's cost, cheap
  sizes rank-correlated 0.55 and 0.65 with a noisy target with near-ties at the top.
* ``regmix_60m()``: RegMix's 256 mixtures run at 1M and 60M (``../shared``); target the
  60M Pile-CC loss, 1M runs cost 1/60 (parameter ratio at equal tokens). Per seed a pool
  of 192 of them, so the best mixture varies.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from metamix.mixtures.mix.sampling import sample_mixtures  # noqa: E402


@dataclass(frozen=True)
class Problem:
    """``losses[i, j]``: loss of pool mixture i at ``fidelities[j]`` (last = target)."""

    name: str
    weights: np.ndarray          # (N, D)
    fidelities: tuple[float, ...]
    costs: tuple[float, ...]     # per run, target run = 1
    losses: np.ndarray           # (N, F)

    @property
    def target(self) -> np.ndarray:
        return self.losses[:, -1]

    @property
    def best(self) -> int:
        return int(np.argmin(self.target))

    def rank_correlations(self) -> list[float]:
        return [float(spearmanr(self.losses[:, j], self.target).statistic)
                for j in range(len(self.fidelities) - 1)]


def _mde_like(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """-sum_v a_v log(sum_d w_d p_vd): each validation domain v is served best by its own
    training domain (p_vv high), others help a little; a_v weighs the validation domains."""
    d = weights.shape[1]
    logp = -rng.uniform(4.0, 7.0, size=(d, d))
    logp[np.diag_indices(d)] += rng.uniform(1.0, 3.0, size=d)
    a = rng.dirichlet(np.full(d, 2.0))
    return -(np.log(weights @ np.exp(logp).T + 1e-12) * a).sum(axis=1)


def _z(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / (x.std() or 1.0)


def _calibrated(signal: np.ndarray, other: np.ndarray, observed: np.ndarray,
                rho: float) -> np.ndarray:
    """a * z(signal) + sqrt(1 - a^2) * z(other) with a in [-1, 1] chosen (bisection) so
    the Spearman correlation with ``observed`` is ``rho``."""
    def corr(a: float) -> float:
        mix = a * _z(signal) + np.sqrt(max(1 - a * a, 0.0)) * _z(other)
        return float(spearmanr(mix, observed).statistic)

    lo, hi = -1.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if corr(mid) < rho else (lo, mid)
    a = (lo + hi) / 2
    return a * _z(signal) + np.sqrt(max(1 - a * a, 0.0)) * _z(other)


def _pool(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    prior = rng.dirichlet(np.full(d, 5.0))
    return sample_mixtures(prior, n, seed=int(rng.integers(2**31)))


def synthetic(rho: float, seed: int, n: int = 150, d: int = 8, cheap_cost: float = 0.1,
              noise: float = 0.1) -> Problem:
    """Two fidelities; the cheap one's rank correlation with the target is ``rho``."""
    rng = np.random.default_rng([seed, int(round(rho * 100))])
    w = _pool(n, d, rng)
    smooth = _mde_like(w, rng)
    target = smooth + noise * smooth.std() * rng.standard_normal(n)
    cheap = _calibrated(smooth, _mde_like(w, rng), target, rho)
    cheap = 3.0 + 0.5 * cheap  # a proxy's loss sits elsewhere; only ranks transfer
    return Problem(f"synthetic rho={rho:g}", w, (cheap_cost, 1.0), (cheap_cost, 1.0),
                   np.column_stack([cheap, target]))


def three_fidelity(seed: int, n: int = 60, d: int = 19) -> Problem:
    """Fidelities 0.18 / 0.48 / 1.0 (cost = fidelity), rank correlations 0.55 / 0.65."""
    rng = np.random.default_rng([seed, 3])
    w = _pool(n, d, rng)
    smooth = _mde_like(w, rng)
    target = smooth + 0.35 * smooth.std() * rng.standard_normal(n)  # noisy, near-ties
    small = _calibrated(smooth, _mde_like(w, rng), target, 0.55)
    mid = _calibrated(smooth, _mde_like(w, rng), target, 0.65)
    return Problem("3 fidelities (0.55/0.65)", w, (0.18, 0.48, 1.0), (0.18, 0.48, 1.0),
                   np.column_stack([2.0 + 0.3 * small, 1.5 + 0.3 * mid, target]))


def regmix_available() -> bool:
    from regmix_data import available

    return available()


def regmix_60m(seed: int, pool: int = 192) -> Problem:
    from regmix_data import load_split, target

    m1, m60 = load_split("test_1m"), load_split("test_60m")
    assert m1["index"] == m60["index"] and np.allclose(m1["weights"], m60["weights"])
    idx = np.sort(np.random.default_rng([seed, 60]).permutation(len(m1["index"]))[:pool])
    w = m1["weights"][idx] / m1["weights"][idx].sum(axis=1, keepdims=True)
    return Problem("RegMix 1M->60M", w, (1 / 60, 1.0), (1 / 60, 1.0),
                   np.column_stack([target(m1)[idx], target(m60)[idx]]))


PROBLEMS = {
    "regmix60m": regmix_60m,
    "rho0.9": lambda seed: synthetic(0.9, seed),
    "rho0.6": lambda seed: synthetic(0.6, seed),
    "rho0.3": lambda seed: synthetic(0.3, seed),
    "rho0": lambda seed: synthetic(0.0, seed),
    "3fid": three_fidelity,
}


if __name__ == "__main__":
    for key, make in PROBLEMS.items():
        if key == "regmix60m" and not regmix_available():
            continue
        p = make(0)
        gap = np.sort(p.target)[:3] - p.target.min()
        print(f"{p.name:28} N={len(p.target)} D={p.weights.shape[1]} rank corr "
              f"{[round(r, 2) for r in p.rank_correlations()]} top gaps / std "
              f"{np.round(gap / p.target.std(), 3)}")
