"""Mixture shares: the shortfall rule, and the rounding every emitted share goes through.

The shortfall rule says where a mixture's tokens go when a domain cannot fill its budget.

A domain whose budget exceeds its eligible tokens keeps all of them; the tokens it lacks
are handed to the other domains in proportion to their mixture weights, each capped by the
eligible tokens it has left, and what a cap leaves over is handed on the same way until
every token is placed or every domain with a weight is full (the total then shrinks).
Domains the mixture gives weight 0 get nothing. Integer tokens are split by largest
remainder, ties to the domain first in name order, so the rule is deterministic.

``select`` applies it to the budgets of ``mixture_file``, and ``metamix mix`` applies it to
the mixture it chooses before writing it, so the shares in ``mixture/`` are the ones
``select`` ships.

Shares are written rounded to ``SHARE_DECIMALS`` with the largest absorbing the rounding,
so they sum to 1 exactly; ``select``'s summary, the files in ``mixture/`` and ``export``
all round through ``rounded_shares``, so one selection gives the same numbers everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

#: Decimals of every emitted share.
SHARE_DECIMALS = 6


def rounded_shares(values: Mapping[str, float]) -> dict[str, float]:
    """``values`` (weights or token counts, not all 0) as shares rounded to
    ``SHARE_DECIMALS``, summing to 1 (the largest share absorbs the rounding)."""
    total = math.fsum(values.values())
    if total <= 0:
        raise ValueError("shares of nothing: every value is 0")
    out = {d: round(v / total, SHARE_DECIMALS) for d, v in values.items()}
    largest = max(out, key=out.__getitem__)   # the first of equal largest ones
    out[largest] = round(out[largest] + 1.0 - math.fsum(out.values()), SHARE_DECIMALS)
    return out


def split_tokens(tokens: int, weights: Mapping[str, float]) -> dict[str, int]:
    """``tokens`` split in proportion to ``weights`` (all > 0), largest remainder."""
    total = math.fsum(weights.values())
    exact = {d: tokens * w / total for d, w in weights.items()}
    out = {d: math.floor(x) for d, x in exact.items()}
    left = tokens - sum(out.values())
    for d in sorted(exact, key=lambda d: (-(exact[d] - out[d]), d))[:max(left, 0)]:
        out[d] += 1
    return out


def redistribute(budgets: Mapping[str, int], available: Mapping[str, int],
                 weights: Mapping[str, float]) -> dict[str, int]:
    """Budgets each within its domain's ``available`` tokens, the shortfall moved by the
    rule above; the sum equals ``sum(budgets)`` unless every weighted domain is full."""
    out = {d: min(int(b), int(available.get(d, 0))) for d, b in budgets.items()}
    short = sum(int(b) for b in budgets.values()) - sum(out.values())
    while short > 0:
        room = {d: int(available.get(d, 0)) - out[d] for d in sorted(out)}
        open_ = {d: float(weights.get(d, 0.0)) for d in room
                 if room[d] > 0 and weights.get(d, 0.0) > 0}
        if not open_:
            break
        give = split_tokens(short, open_)
        for d, n in give.items():
            placed = min(n, room[d])
            out[d] += placed
            short -= placed
    return out
