"""Per-domain quotas: how many documents or tokens each domain may keep.

Quotas are computed in Python from per-domain counts (tiny), then joined back in SQL, so the
exact rounding rules live in one readable place.
"""

from __future__ import annotations

import math
from typing import Any

import duckdb

from metamix.pipeline.selection.config import SelectConfig
from metamix.pipeline.selection.files import SelectionError, load_mixture_file


def _quota_for(fraction: float, n: int) -> int:
    # round() first so 0.3 * 10 == 3.0000000000000004 does not become 4.
    return math.ceil(round(fraction * n, 6))


def _domain_budgets(
    cfg: SelectConfig, available: dict[str, int], warnings: list[str]
) -> dict[str, int]:
    """Token budget per data domain; shortfalls are appended to ``warnings``."""
    if cfg.mixture_file is None:
        assert cfg.token_budget is not None  # guaranteed by SelectConfig
        total_available = sum(available.values())
        budgets = {d: (cfg.token_budget * t // total_available if total_available else 0)
                   for d, t in available.items()}
    else:
        mixture = load_mixture_file(cfg.mixture_file)
        for domain in sorted(available):
            if domain not in mixture.weights:
                raise SelectionError(
                    f"mixture file {cfg.mixture_file}: no weight for domain '{domain}'"
                )
        total = cfg.token_budget or mixture.total_tokens
        if total is None:
            raise SelectionError(
                f"mixture file {cfg.mixture_file}: no total_tokens and select.token_budget unset"
            )
        if cfg.token_budget and mixture.total_tokens and cfg.token_budget != mixture.total_tokens:
            warnings.append(
                f"select.token_budget {cfg.token_budget} overrides total_tokens "
                f"{mixture.total_tokens} of mixture file {cfg.mixture_file}"
            )
        budgets = {d: math.floor(round(mixture.weights[d] * total, 6)) for d in available}
        for domain, weight in sorted(mixture.weights.items()):
            if domain not in available and weight > 0:
                warnings.append(f"domain '{domain}': in mixture file {cfg.mixture_file} "
                                "but absent from the scored input; budget unfilled")
    for domain, budget in sorted(budgets.items()):
        if available[domain] < budget:
            warnings.append(f"domain '{domain}': budget {budget} tokens but only "
                            f"{available[domain]} available after hard filters")
    return budgets


def define_outcomes(
    con: duckdb.DuckDBPyConnection, cfg: SelectConfig, warnings: list[str]
) -> dict[str, Any]:
    """Create the ``outcomes`` view (outcome NULL = kept) and return the quota details."""
    # Hard-filter survivors per domain: what quotas are fractions of / budgets draw from.
    survivors = con.sql(
        "SELECT domain, count(*) FILTER (drop_reason IS NULL), "
        "coalesce(sum(n_tokens) FILTER (drop_reason IS NULL), 0) FROM ranked GROUP BY domain"
    ).fetchall()
    counts = {domain: int(n) for domain, n, _ in survivors}
    candidates = {domain: int(tokens) for domain, _, tokens in survivors}
    quotas: dict[str, Any]
    if cfg.mode == "token_budget":
        budgets = _domain_budgets(cfg, candidates, warnings)
        quotas = {"budget_tokens": budgets, "available_tokens": candidates}
        keep = "r.cumulative_tokens <= q.quota"
        per_domain_quota = budgets
    elif cfg.per_domain:
        per_domain_quota = {d: _quota_for(cfg.fraction, n) for d, n in counts.items()}
        quotas = {"max_docs": per_domain_quota}
        keep = "r.domain_rank <= q.quota"
    else:
        global_quota = _quota_for(cfg.fraction, sum(counts.values()))
        per_domain_quota = {d: global_quota for d in counts}
        quotas = {"max_docs_global": global_quota}
        keep = "r.global_rank <= q.quota"
    con.execute("CREATE TEMP TABLE quotas (domain VARCHAR, quota BIGINT)")
    if per_domain_quota:
        con.executemany("INSERT INTO quotas VALUES (?, ?)", sorted(per_domain_quota.items()))
    con.execute(
        "CREATE TEMP VIEW outcomes AS SELECT r.*, CASE WHEN r.drop_reason IS NOT NULL "
        f"THEN r.drop_reason WHEN {keep} THEN NULL ELSE 'not_selected' END AS outcome "
        "FROM ranked r JOIN quotas q USING (domain)"
    )
    return quotas
