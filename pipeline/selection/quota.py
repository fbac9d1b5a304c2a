"""Per-domain quotas: how many documents or tokens each domain may keep, and the cut.

Quotas are computed in Python from per-domain counts (tiny), then joined back in SQL, so the
exact rounding rules live in one readable place.

Budgets from a mixture file follow the shortfall rule (``shares.py``): a domain short of
its budget keeps all its candidates and the rest of its budget goes to the other domains by
their mixture weights, capped by what they have.

Token budgets are filled first-fit in rank order: a document that would push its domain over
the budget is skipped and the scan goes on, so a domain ends less than its smallest remaining
document short of its budget. Every selection under the same budgets therefore holds the same
tokens per domain, whatever the length of the documents its weights prefer.

A *length-neutral* cut (``Cut.length_neutral``) also keeps each domain's tokens spread over
document lengths as the candidates' are: documents fall into bands of doubling length
(``floor(log2(n_tokens))``), each band gets the domain budget's share that its candidates
hold, and the ranking decides which documents fill each band; what the bands leave unfilled
is then topped up first-fit in rank order. Weights that favour long documents can no longer
spend a domain's budget on a few of them: within a band no document is more than twice as
long as another, so a domain keeps at least about half the documents a random selection of
the same tokens keeps.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import duckdb
import numpy as np

from metamix.pipeline.selection.config import Cut
from metamix.pipeline.selection.files import SelectionError, load_mixture_file
from metamix.pipeline.selection.shares import redistribute


def _quota_for(fraction: float, n: int) -> int:
    # round() first so 0.3 * 10 == 3.0000000000000004 does not become 4.
    return math.ceil(round(fraction * n, 6))


def domain_budgets(cut: Cut, available: dict[str, int], warnings: list[str],
                   details: dict[str, Any] | None = None) -> dict[str, int]:
    """Token budget per data domain; shortfalls are appended to ``warnings``. A mixture
    file's budgets follow the shortfall rule (``shares.py``); ``details`` then gets the
    mixture's weights and the budgets before the rule (``mixture_weights``,
    ``requested_tokens``)."""
    if cut.budgets is not None:
        given = dict(cut.budgets)
        budgets = {d: int(given.get(d, 0)) for d in available}
    elif cut.mixture_file is None:
        if cut.token_budget is None:
            raise SelectionError("mode token_budget needs 'token_budget' and/or 'mixture_file'")
        total_available = sum(available.values())
        budgets = {d: (cut.token_budget * t // total_available if total_available else 0)
                   for d, t in available.items()}
    else:
        mixture = load_mixture_file(cut.mixture_file)
        for domain in sorted(available):
            if domain not in mixture.weights:
                raise SelectionError(
                    f"mixture file {cut.mixture_file}: no weight for domain '{domain}'")
        total = cut.token_budget or mixture.total_tokens
        if total is None:
            raise SelectionError(
                f"mixture file {cut.mixture_file}: no total_tokens and select.token_budget unset")
        if cut.token_budget and mixture.total_tokens and cut.token_budget != mixture.total_tokens:
            warnings.append(f"select.token_budget {cut.token_budget} overrides total_tokens "
                            f"{mixture.total_tokens} of mixture file {cut.mixture_file}")
        budgets = {d: math.floor(round(mixture.weights[d] * total, 6)) for d in available}
        for domain, weight in sorted(mixture.weights.items()):
            if domain not in available and weight > 0:
                warnings.append(f"domain '{domain}': in mixture file {cut.mixture_file} "
                                "but absent from the scored input; budget unfilled")
        if details is not None:
            details["mixture_weights"] = {d: mixture.weights[d] for d in sorted(available)}
            details["chosen_weights"] = {d: (mixture.chosen or mixture.weights).get(d, 0.0)
                                         for d in sorted(available)}
            details["requested_tokens"] = dict(budgets)
        return _apply_shortfall(budgets, available, mixture.weights, warnings)
    for domain, budget in sorted(budgets.items()):
        if available[domain] < budget:
            warnings.append(f"domain '{domain}': budget {budget} tokens but only "
                            f"{available[domain]} eligible")
    return budgets


def _apply_shortfall(budgets: dict[str, int], available: dict[str, int],
                     weights: dict[str, float], warnings: list[str]) -> dict[str, int]:
    short = {d: b - available[d] for d, b in sorted(budgets.items()) if available[d] < b}
    if not short:
        return budgets
    moved = redistribute(budgets, available, weights)
    for domain, missing in short.items():
        warnings.append(f"domain '{domain}': budget {budgets[domain]} tokens but only "
                        f"{available[domain]} eligible; its {missing} missing tokens go to "
                        "the other domains by their mixture weights")
    unplaced = sum(budgets.values()) - sum(moved.values())
    if unplaced:
        warnings.append(f"{unplaced} tokens of the mixture's budget found no domain with "
                        "eligible tokens left: the selection is that much smaller")
    return moved


#: Above this many candidates the first-fit scan runs compiled (numba); below, loading the
#: compiled kernel (~1.5 s with numba's import) costs more than the Python loop.
COMPILED_FIRST_FIT_ROWS = 500_000


def _first_fit_loop(group: np.ndarray, sizes: np.ndarray, budgets: np.ndarray) -> np.ndarray:
    remaining = budgets.copy()
    kept = np.zeros(len(sizes), dtype=np.bool_)
    for i in range(len(sizes)):
        g = group[i]
        if sizes[i] <= remaining[g]:
            kept[i] = True
            remaining[g] -= sizes[i]
    return kept


@lru_cache(maxsize=1)
def _compiled_first_fit() -> Any:
    from numba import njit

    return njit(cache=True)(_first_fit_loop)


def first_fit(group: np.ndarray, sizes: np.ndarray, budgets: np.ndarray) -> np.ndarray:
    """Keep mask for items in rank order within each group: an item is kept when it still
    fits its group's remaining budget."""
    if len(sizes) >= COMPILED_FIRST_FIT_ROWS:
        return _compiled_first_fit()(group, sizes, budgets)
    remaining = budgets.tolist()
    kept = []
    for g, size in zip(group.tolist(), sizes.tolist(), strict=True):
        fits = size <= remaining[g]
        kept.append(fits)
        if fits:
            remaining[g] -= size
    return np.array(kept, dtype=np.bool_)


def length_band(n_tokens: np.ndarray) -> np.ndarray:
    """``floor(log2(n))``, exact (frexp's exponent); 0- and 1-token documents share band 0."""
    return np.frexp(np.maximum(n_tokens, 1).astype(np.float64))[1].astype(np.int64) - 1


def stratified_fit(group: np.ndarray, strata: np.ndarray, sizes: np.ndarray,
                   budgets: np.ndarray) -> np.ndarray:
    """Keep mask of a first-fit fill per (group, stratum), each stratum budgeted by its
    share of the group's candidate tokens, then topped up per group in rank order."""
    keys, inverse = np.unique(np.stack([group, strata]), axis=1, return_inverse=True)
    inverse = inverse.reshape(-1)
    band_tokens = np.zeros(keys.shape[1], dtype=np.int64)
    np.add.at(band_tokens, inverse, sizes)
    group_tokens = np.zeros(len(budgets), dtype=np.int64)
    np.add.at(group_tokens, group, sizes)
    # exact integer shares (Python ints: budget x tokens can pass 2**63 on big corpora)
    band_budget = np.array([int(budgets[g]) * int(t) // int(group_tokens[g])
                            for g, t in zip(keys[0].tolist(), band_tokens.tolist(), strict=True)],
                           dtype=np.int64)
    kept = first_fit(inverse.astype(np.int64), sizes, band_budget)
    used = np.zeros(len(budgets), dtype=np.int64)
    np.add.at(used, group[kept], sizes[kept])
    rest = np.flatnonzero(~kept)
    kept[rest[first_fit(group[rest], sizes[rest], budgets - used)]] = True
    return kept


def length_neutral_fit(group: np.ndarray, sizes: np.ndarray, budgets: np.ndarray
                       ) -> np.ndarray:
    """:func:`stratified_fit` over bands of doubling document length."""
    return stratified_fit(group, length_band(sizes), sizes, budgets)


def cut_strata(cut: Cut, sizes: np.ndarray, sources: np.ndarray | None) -> np.ndarray | None:
    """Stratum of each candidate inside its domain under ``cut`` (None: plain first-fit):
    length bands, sources, or both (a source's documents of one band)."""
    parts = []
    if cut.source_neutral and sources is not None:
        parts.append(np.unique(sources, return_inverse=True)[1].reshape(-1).astype(np.int64))
    if cut.length_neutral:
        parts.append(length_band(sizes))
    if not parts:
        return None
    return parts[0] * 64 + parts[1] if len(parts) == 2 else parts[0]


def _budget_ranks(con: duckdb.DuckDBPyConnection, budgets: dict[str, int], cut: Cut) -> None:
    """Create ``kept_ranks`` (domain, domain_rank): the candidates a first-fit fill of
    ``budgets`` keeps."""
    # sources are read only when the cut strata need them: every proxy run cuts once
    source = ", coalesce(source, '') AS source" if cut.source_neutral else ""
    rows = con.sql(f"SELECT domain, domain_rank, n_tokens{source} FROM ranked WHERE "
                   "domain_rank IS NOT NULL ORDER BY domain, domain_rank").fetchnumpy()
    domains = sorted(budgets)
    codes = np.searchsorted(np.asarray(domains, dtype=object), rows["domain"]).astype(np.int64)
    sizes = np.asarray(rows["n_tokens"], dtype=np.int64)
    limits = np.asarray([budgets[d] for d in domains], dtype=np.int64)
    strata = cut_strata(cut, sizes, np.asarray(rows["source"], dtype=object)
                        if cut.source_neutral else None)
    kept = (first_fit(codes, sizes, limits) if strata is None
            else stratified_fit(codes, strata, sizes, limits))
    # Lists as query parameters: registering an Arrow table would make DuckDB import pandas.
    con.execute("CREATE OR REPLACE TEMP TABLE kept_ranks AS SELECT unnest(?::VARCHAR[]) AS "
                "domain, unnest(?::BIGINT[]) AS domain_rank",
                [rows["domain"][kept].tolist(), rows["domain_rank"][kept].tolist()])


def define_outcomes(con: duckdb.DuckDBPyConnection, cut: Cut, warnings: list[str]
                    ) -> dict[str, Any]:
    """Create the ``outcomes`` table from ``ranked`` (outcome NULL = kept) and return the
    quota details."""
    # Hard-filter survivors per domain: what quotas are fractions of / budgets draw from.
    survivors = con.sql(
        "SELECT domain, count(*) FILTER (drop_reason IS NULL), "
        "coalesce(sum(n_tokens) FILTER (drop_reason IS NULL), 0) FROM ranked GROUP BY domain"
    ).fetchall()
    counts = {domain: int(n) for domain, n, _ in survivors}
    candidates = {domain: int(tokens) for domain, _, tokens in survivors}
    quotas: dict[str, Any]
    if cut.mode == "token_budget":
        details: dict[str, Any] = {}
        budgets = domain_budgets(cut, candidates, warnings, details)
        quotas = {"budget_tokens": budgets, "available_tokens": candidates, **details}
        _budget_ranks(con, budgets, cut)
        con.execute(
            "CREATE OR REPLACE TEMP TABLE outcomes AS SELECT r.*, CASE WHEN r.drop_reason IS "
            "NOT NULL THEN r.drop_reason WHEN k.domain_rank IS NOT NULL THEN NULL ELSE "
            "'not_selected' END AS outcome FROM ranked r LEFT JOIN kept_ranks k "
            "ON r.domain = k.domain AND r.domain_rank = k.domain_rank")
        con.execute("DROP TABLE kept_ranks")
        return quotas
    if cut.per_domain:
        per_domain_quota = {d: _quota_for(cut.fraction, n) for d, n in counts.items()}
        quotas = {"max_docs": per_domain_quota}
        keep = "r.domain_rank <= q.quota"
    else:
        global_quota = _quota_for(cut.fraction, sum(counts.values()))
        per_domain_quota = {d: global_quota for d in counts}
        quotas = {"max_docs_global": global_quota}
        keep = "r.global_rank <= q.quota"
    con.execute("CREATE OR REPLACE TEMP TABLE quotas (domain VARCHAR, quota BIGINT)")
    if per_domain_quota:
        con.executemany("INSERT INTO quotas VALUES (?, ?)", sorted(per_domain_quota.items()))
    con.execute(
        "CREATE OR REPLACE TEMP TABLE outcomes AS SELECT r.*, CASE WHEN r.drop_reason IS NOT "
        f"NULL THEN r.drop_reason WHEN {keep} THEN NULL ELSE 'not_selected' END AS outcome "
        "FROM ranked r JOIN quotas q USING (domain)")
    return quotas
