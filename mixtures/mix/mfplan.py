"""What to run next across fidelity levels: probe, single-fidelity BO, or MF-MES per cost.

``plan`` is ``mix suggest``'s multi-fidelity mode, in pool mode (``candidates``: the
(mixture, level) pairs that exist and were not run) or continuous mode (the capped
simplex at every level). Policy, per call (see ``multifidelity`` for why):

1. fewer than 3 target runs: run the target first, at the mixtures cheap runs rank best;
2. probes: cheap runs at mixtures already run at the target, for levels not yet trusted,
   while their cost stays within ``probe_fraction`` of the target spend, until the pairs
   show the level will not earn trust (``MAX_PROBE_PAIRS``, ``GIVE_UP_CORR``);
3. no trusted level: the remaining picks are single-fidelity BO on the target runs
   (``bo.suggest``, the same call as single-fidelity ``mix suggest``);
4. trusted levels: multi-task GP over them and the target, MF-MES per unit cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from metamix.mixtures.mix.bo import suggest as sf_suggest
from metamix.mixtures.mix.bo_models import hyperparameters
from metamix.mixtures.mix.choice import SurrogateChoice
from metamix.mixtures.mix.multifidelity import (
    TASK_GP_MAXITER,
    FidelityLevels,
    LevelTrust,
    assess_levels,
    fit_task_gp,
    level_correlations,
    mf_acquisition,
)
from metamix.mixtures.mix.pool import same_weights
from metamix.mixtures.mix.sampling import dirichlet_candidates

#: Share of the target spend that probes of untrusted cheap levels may cost: with cheap runs
#: at 0.1 of the target, every target run gets its pair at once, so a level that predicts
#: the target is trusted as early as the pairs allow. What a useless level costs is capped
#: by ``MAX_PROBE_PAIRS`` / ``GIVE_UP_CORR`` (at most 12 pairs a level), not by this share.
PROBE_FRACTION = 0.1
#: An untrusted level is no longer probed once it has this many pairs, or half as many
#: with a rank correlation below ``GIVE_UP_CORR``: the evidence says it will not help.
MAX_PROBE_PAIRS = 12
GIVE_UP_CORR = 0.3
#: Dirichlet candidates per level for continuous multi-fidelity search.
CONTINUOUS_CANDIDATES = 4096


@dataclass
class MFPlan:
    """``weights[i]`` at level ``levels[i]`` (index into FidelityLevels) is pick i; in pool
    mode ``index[i]`` is its candidate row (continuous: -1)."""

    weights: np.ndarray
    levels: np.ndarray
    index: np.ndarray
    trust: list[LevelTrust]
    mode: str
    choice: SurrogateChoice | None = None
    notes: list[str] = field(default_factory=list)
    warm: dict | None = None   # {"sf": GP, "mf": multi-task GP} hyper-parameters, for the
    #                            next call's ``warm`` (a BO loop's shortcut)


def plan(weights: np.ndarray, level: np.ndarray, losses: np.ndarray, levels: FidelityLevels,
         n: int = 1, seed: int = 0, candidates: tuple[np.ndarray, np.ndarray] | None = None,
         caps: np.ndarray | None = None, run_cost: np.ndarray | None = None,
         surrogate: str = "auto", folds: int = 5, probe_fraction: float = PROBE_FRACTION,
         warm: dict | None = None, maxiter: int | None = None) -> MFPlan:
    """The next ``n`` runs. ``weights``/``level``/``losses``: the runs so far (``level``
    indexes ``levels``); ``candidates``: (weights, level) of the pool pairs not yet run,
    or None for continuous search on the (capped) simplex. ``warm``/``maxiter``: start
    the GP fits from the previous call's ``MFPlan.warm`` with capped iterations."""
    warm = dict(warm or {})
    target = levels.target
    cost = np.asarray(levels.costs)[level] if run_cost is None else np.asarray(run_cost)
    models: dict = {}
    trust = assess_levels(weights, level, losses, levels, seed, models, warm.get("mf"),
                          maxiter)
    is_target = level == target
    if is_target.sum() < 3:
        return _bootstrap(weights, level, losses, candidates, target, trust, n, seed)
    pick_w: list[np.ndarray] = []
    pick_l: list[int] = []
    pick_i: list[int] = []
    untrusted = [i for i, t in enumerate(trust) if not t.trusted]
    allowance = probe_fraction * cost[is_target].sum() - cost[np.isin(level, untrusted)].sum()
    probing = [i for i in untrusted if not _given_up(trust[i])]
    for i in set(untrusted) - set(probing):
        trust[i].reason += "; no more probes"
    pw, pl, pi = _probe_options(weights, level, candidates, probing, target)
    for j in _probes(pl, trust, allowance, n):
        pick_w.append(pw[j])
        pick_l.append(int(pl[j]))
        pick_i.append(int(pi[j]))
    mode = ["probe"] if pick_w else []
    rest = n - len(pick_w)
    trusted = [i for i, t in enumerate(trust) if t.trusted]
    result = MFPlan(np.zeros((0, weights.shape[1])), np.zeros(0, int), np.zeros(0, int), trust,
                    "", warm=warm)
    if rest > 0 and not trusted:
        mode.append("single-fidelity")
        options = np.flatnonzero(candidates[1] == target) if candidates is not None else None
        if options is None or len(options):
            sug = sf_suggest(weights[is_target], losses[is_target], n=rest, seed=seed,
                             pool=None if options is None else candidates[0][options],
                             caps=caps, surrogate=surrogate, folds=folds,
                             warm=warm.get("sf"), maxiter=maxiter)
            result.choice = sug.choice
            result.warm = {**warm, "sf": sug.warm}
            result.notes += sug.warnings
            for k, w in enumerate(sug.weights):
                pick_w.append(w)
                pick_l.append(target)
                pick_i.append(-1 if options is None else int(options[sug.index[k]]))
    elif rest > 0:
        mode.append("multi-fidelity")
        reuse = models.get(trusted[0]) if len(trusted) == 1 else None
        spent = {lvl: float(cost[level == lvl].sum()) for lvl in trusted}
        w, lv, i, mf_warm = _mf_picks(weights, level, losses, levels, trust, trusted,
                                      candidates, caps, rest, seed, warm.get("mf"), maxiter,
                                      exclude=pick_i, model=reuse, spent=spent,
                                      target_spent=float(cost[is_target].sum()))
        result.warm = {**warm, "mf": mf_warm}
        pick_w += list(w)
        pick_l += list(lv)
        pick_i += list(i)
    result.weights = np.array(pick_w).reshape(len(pick_w), weights.shape[1])
    result.levels, result.index = np.array(pick_l, int), np.array(pick_i, int)
    result.mode = "+".join(mode)
    return result


def _given_up(t: LevelTrust) -> bool:
    if t.pairs >= MAX_PROBE_PAIRS:
        return True
    return t.pairs >= MAX_PROBE_PAIRS // 2 and not t.pair_rank_corr >= GIVE_UP_CORR


def _probe_options(weights: np.ndarray, level: np.ndarray,
                   candidates: tuple[np.ndarray, np.ndarray] | None, untrusted: list[int],
                   target: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(weights, level, candidate index) of cheap runs that would pair with a target run,
    ordered by that target run's position (earliest first)."""
    target_w = weights[level == target]
    rows: list[tuple[int, np.ndarray, int, int]] = []
    if candidates is not None:
        cw, cl = candidates
        hit = same_weights(cw, target_w)
        for j in np.flatnonzero(np.isin(cl, untrusted) & hit.any(axis=1)):
            rows.append((int(hit[j].argmax()), cw[j], int(cl[j]), int(j)))
    else:
        for lvl in untrusted:
            done = same_weights(target_w, weights[level == lvl]).any(axis=1)
            rows += [(int(k), target_w[k], lvl, -1) for k in np.flatnonzero(~done)]
    rows.sort(key=lambda r: r[0])
    d = weights.shape[1]
    return (np.array([r[1] for r in rows]).reshape(len(rows), d),
            np.array([r[2] for r in rows], int), np.array([r[3] for r in rows], int))


def _probes(probe_level: np.ndarray, trust: list[LevelTrust], allowance: float,
            limit: int) -> list[int]:
    """Which probe options to buy: the untrusted level with the fewest pairs first (then
    the cheapest), earliest target run first, while the allowance lasts."""
    picks: list[int] = []
    pairs = {lvl: trust[lvl].pairs for lvl in set(probe_level.tolist())}
    while pairs and len(picks) < limit:
        lvl = min(pairs, key=lambda k: (pairs[k], trust[k].cost))
        options = [j for j in np.flatnonzero(probe_level == lvl) if j not in picks]
        if trust[lvl].cost > allowance + 1e-12 or not options:
            del pairs[lvl]
            continue
        picks.append(int(options[0]))
        allowance -= trust[lvl].cost
        pairs[lvl] += 1
    return picks


def _mf_picks(weights, level, losses, levels: FidelityLevels, trust: list[LevelTrust],
              trusted: list[int], candidates, caps, n: int, seed: int, warm, maxiter,
              exclude: list[int], model=None, spent: dict[int, float] | None = None,
              target_spent: float = 0.0):
    """Multi-task GP over the target and trusted levels. MF-MES per unit cost decides
    whether cheap runs are worth more than a target run now (and which); target runs are
    chosen by qLogEI on the GP's target posterior, which finds the best target mixture
    more directly than information about the best value does. Updates each trusted
    level's fitted GP correlation. ``model``: the trust test's GP when it covers exactly
    the target and the one trusted level (no refit).

    A trusted level's spend stays within corr^2 x the target spend (corr: its fitted GP
    correlation, corr^2 the share of the target's variation it explains): max-value
    entropy per cost otherwise keeps buying cheap runs long after they stop helping find
    the best target mixture, which only a target run can confirm."""
    from botorch.optim import optimize_acqf_discrete

    from metamix.mixtures.mix.search import _log_ei, _row_index

    target = levels.target
    order = [*trusted, target]
    compact = {lvl: i for i, lvl in enumerate(order)}
    keep = np.isin(level, order)
    to_compact = np.vectorize(compact.get)
    if model is None:
        model = fit_task_gp(weights[keep], to_compact(level[keep]), losses[keep], len(order),
                            seed=seed, init=warm, maxiter=maxiter or TASK_GP_MAXITER)
    corr = level_correlations(model)
    for lvl in trusted:
        trust[lvl].model_corr = float(corr[compact[lvl]])
    if candidates is not None:
        cw, cl = candidates
        options = np.flatnonzero(np.isin(cl, order))
        options = options[~np.isin(options, exclude)]
    else:
        prior = weights[level == target].mean(axis=0)
        cands = dirichlet_candidates(prior, CONTINUOUS_CANDIDATES, seed=seed, caps=caps)
        cw = np.vstack([cands] * len(order))
        cl = np.repeat(order, len(cands))
        options = np.arange(len(cw))
    is_t = cl[options] == target
    max_set = np.vstack([cw[options][is_t], weights[level == target]])
    costs = np.array([levels.costs[lvl] for lvl in order])
    values = mf_acquisition(model, cw[options], to_compact(cl[options]), costs, max_set,
                            compact[target]) if len(options) else np.zeros(0)
    best_target = values[is_t].max() if is_t.any() else -np.inf
    ranked = np.argsort(-values[~is_t], kind="stable")
    cheap = options[~is_t][ranked][values[~is_t][ranked] > best_target]
    room = {lvl: corr[compact[lvl]] ** 2 * target_spent - (spent or {}).get(lvl, 0.0)
            for lvl in trusted}
    cheap = _spread(cw, cl, cheap, n, room, levels.costs)
    if len(cheap) or not is_t.any():
        index = cheap if candidates is not None else np.full(len(cheap), -1)
        return cw[cheap], cl[cheap].astype(int), index, hyperparameters(model)
    t_opts = options[is_t]
    choices = torch.as_tensor(np.hstack([cw[t_opts], np.full((len(t_opts), 1),
                                                               float(compact[target]))]))
    y_t = losses[level == target]
    picked, _ = optimize_acqf_discrete(_log_ei(model, float(np.min(y_t))),
                                       q=min(n, len(t_opts)), choices=choices)
    top = t_opts[[_row_index(choices, row) for row in picked]]
    index = top if candidates is not None else np.full(len(top), -1)
    return cw[top], cl[top].astype(int), index, hyperparameters(model)


#: Picks of one batch at one level keep at least this L1 distance (one acquisition pass
#: without fantasies would otherwise return near-copies of its best point).
MIN_BATCH_L1 = 0.05


def _spread(cw: np.ndarray, cl: np.ndarray, ranked: np.ndarray, n: int,
            room: dict[int, float], costs: tuple[float, ...]) -> np.ndarray:
    """The first ``n`` of ``ranked`` (candidate indices, best first) that are not within
    ``MIN_BATCH_L1`` of an earlier pick at the same level and whose level has ``room``
    (spend left) for them."""
    room = dict(room)
    picks: list[int] = []
    for i in ranked:
        if len(picks) == n:
            break
        lvl = int(cl[i])
        if room.get(lvl, 0.0) < costs[lvl] - 1e-12:
            continue
        if all(cl[j] != lvl or np.abs(cw[j] - cw[i]).sum() >= MIN_BATCH_L1 for j in picks):
            picks.append(int(i))
            room[lvl] -= costs[lvl]
    return np.array(picks, int)


def _bootstrap(weights: np.ndarray, level: np.ndarray, losses: np.ndarray,
               candidates: tuple[np.ndarray, np.ndarray] | None, target: int,
               trust: list[LevelTrust], n: int, seed: int) -> MFPlan:
    """Fewer than 3 target runs: the target at the mixtures the cheap runs rank best
    (per-level z-scores, averaged over levels), then (pool) at random candidates."""
    cheap = level != target
    if candidates is not None:
        options = np.flatnonzero(candidates[1] == target)
        cw = candidates[0][options]
    else:
        cw = np.unique(weights[cheap], axis=0)
        cw = cw[~same_weights(cw, weights[~cheap]).any(axis=1)]
        options = np.full(len(cw), -1)
    if not len(cw):
        raise ValueError("multi-fidelity search needs 3 runs at the target fidelity, or "
                         "cheap runs whose best mixtures it can run at the target")
    score = np.zeros(len(cw))
    seen = np.zeros(len(cw), bool)
    for lvl in np.unique(level[cheap]):
        rows = level == lvl
        z = (losses[rows] - losses[rows].mean()) / (losses[rows].std() or 1.0)
        hit = same_weights(cw, weights[rows])
        has = hit.any(axis=1)
        score[has] += z[hit[has].argmax(axis=1)]
        seen |= has
    score[~seen] = np.inf
    tie = np.random.default_rng(seed).random(len(cw))
    order = np.lexsort((tie, score))[:n]
    if candidates is None:
        order = order[np.isfinite(score[order])]
    return MFPlan(cw[order], np.full(len(order), target), options[order], trust, "bootstrap",
                  notes=[f"{int((~cheap).sum())} target run(s): running the target first, "
                         "at the mixtures the cheap runs rank best"])
