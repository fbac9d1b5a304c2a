"""Sampled documents of a finished selection, per drop reason, score decile or domain.

A filter is trusted after reading what it kept and what it dropped, so ``metamix inspect``
shows a few documents of each group as short excerpts. ``select`` keeps no per-row outcome
on disk (``selected/`` holds the kept rows only, the summary counts), so the outcomes are
recomputed here through the same ``SelectionEngine`` and cut as ``select`` (deterministic,
hence the same rows); counts that differ from ``selection_summary.json`` mean the config
changed since, and are reported as a warning. Samples are the rows with the smallest
``md5(seed:id)`` in each group, like the engine's random baseline: the same seed gives the
same documents on any machine, whatever the shard order (Python's ``hash()`` is salted).
"""

from __future__ import annotations

import difflib
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from metamix.base.errors import UserError
from metamix.pipeline.config import PipelineConfig
from metamix.pipeline.selection.config import resolve_weights
from metamix.pipeline.selection.eligible import Eligibility, open_engine
from metamix.pipeline.selection.engine import (
    NUMERIC_TYPE,
    connect,
    ident,
    literal,
    register_object_stores,
)
from metamix.pipeline.selection.files import SelectionError
from metamix.pipeline.selection.run import SUMMARY_NAME

KEPT = "kept"  # the outcome label of kept rows (``outcomes.outcome`` is NULL for them)
EXCERPT_CHARS = 300
DECILES = 10


@dataclass(frozen=True)
class Sample:
    """One sampled document, with what a reader needs to judge its outcome."""

    id: str
    domain: str
    source: str | None
    n_tokens: int
    outcome: str
    combined_score: float | None
    score: float | None  # the ``--score`` column, when one is asked for
    excerpt: str


@dataclass
class Group:
    """The documents sharing one reason / decile / domain, and a sample of them."""

    label: str
    size: int
    samples: list[Sample] = field(default_factory=list)


def excerpt(text: str | None, limit: int = EXCERPT_CHARS) -> str:
    """Whitespace collapsed to single spaces (a page of newlines reads as one line), cut
    at ``limit`` characters with an ellipsis."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[:limit].rstrip() + "…"


def matches(outcome: str, wanted: str) -> bool:
    """``gopher_repetition`` selects every ``gopher_repetition:<reason>``."""
    return outcome == wanted or outcome.startswith(wanted + ":")


def inspect_selection(
    cfg: PipelineConfig, *, n: int = 3, seed: int | None = None, score: str | None = None,
    by_domain: bool = False, domain: str | None = None, reasons: tuple[str, ...] = (),
    kept: bool | None = None,
) -> tuple[list[Group], list[str]]:
    """Groups (per reason, or per decile of ``score`` and/or per domain) with up to ``n``
    samples each, and warnings. ``kept`` True/False keeps only kept/dropped rows."""
    run_dir = cfg.run_dir
    if cfg.select is None:
        raise UserError("the config has no select: section, so no run has a selection")
    summary_path = run_dir / SUMMARY_NAME
    scored = sorted((run_dir / "scored").glob("part-*.parquet"))
    if not summary_path.is_file() or not scored:
        raise UserError(f"no finished selection in {run_dir} (no {SUMMARY_NAME}): run "
                        "`metamix select` first")
    summary = json.loads(summary_path.read_text())
    with tempfile.TemporaryDirectory(prefix="metamix-inspect-") as spill:
        con = connect(cfg.select.duckdb_memory_limit, cfg.select.duckdb_threads, Path(spill))
        register_object_stores(con, scored)
        try:
            weights, normalization, source = resolve_weights(cfg.select)
            engine = open_engine(con, Eligibility.of(cfg.select), scored, list(weights),
                                 normalization=normalization)
            engine.select(weights, cfg.select.cut())
            return _sample(con, engine.source, summary, n=n, seed=cfg.seed if seed is None
                           else seed, score=score, by_domain=by_domain, domain=domain,
                           reasons=reasons, kept=kept)
        except SelectionError as exc:
            raise UserError(f"select: {exc}") from None
        finally:
            con.close()


def _count_warnings(present: dict[str, int], summary: dict[str, Any]) -> list[str]:
    totals = summary["totals"]
    recorded = {KEPT: totals["docs_after"], **totals["dropped_docs"]}
    if recorded == present:
        return []
    return [f"outcomes differ from {SUMMARY_NAME} (the select: section or the scored shards "
            "changed since `metamix select`); rerun it for samples of what ships"]


def _sample(con: Any, source: str, summary: dict[str, Any], *, n: int, seed: int,
            score: str | None, by_domain: bool, domain: str | None,
            reasons: tuple[str, ...], kept: bool | None) -> tuple[list[Group], list[str]]:
    types = {c: t for c, t, *_ in con.sql(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    column = {c: f"s.{ident(c)}" if c in types else "NULL" for c in ("text", "source")}
    score_sql = "NULL"
    if score == "combined_score":
        score_sql = "o.combined_score"
    elif score is not None:
        numeric = sorted(c for c, t in types.items() if NUMERIC_TYPE.match(t))
        if score not in numeric:
            near = difflib.get_close_matches(score, [*numeric, "combined_score"], n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            what = "not numeric" if score in types else "no such column in the scored input"
            raise UserError(f"--score {score}: {what}{hint}")
        score_sql = f"CAST(s.{ident(score)} AS DOUBLE)"
    con.execute(
        "CREATE OR REPLACE TEMP TABLE insp AS SELECT o.id, o.domain, o.n_tokens, "
        f"coalesce(o.outcome, {literal(KEPT)}) AS outcome, o.combined_score, "
        f"CASE WHEN isfinite({score_sql}) THEN {score_sql} END AS score, "
        f"{column['text']} AS text, {column['source']} AS source "
        f"FROM outcomes o JOIN {source} s ON o.id = s.id")
    present = dict(con.sql("SELECT outcome, count(*) FROM insp GROUP BY ALL").fetchall())
    warnings = _count_warnings(present, summary)
    for wanted in reasons:
        if not any(matches(o, wanted) for o in present):
            raise UserError(f"--reason {wanted}: no document has it; reasons in this run: "
                            f"{', '.join(sorted(present))}")
    domains = [d for (d,) in con.sql("SELECT DISTINCT domain FROM insp ORDER BY 1").fetchall()]
    if domain is not None and domain not in domains:
        raise UserError(f"--domain {domain}: no such domain; domains: {', '.join(domains)}")
    # deciles over every row, before the filters, so decile 10 means the same in any view
    con.execute(f"CREATE OR REPLACE TEMP TABLE insp_d AS SELECT *, CASE WHEN score IS NOT "
                f"NULL THEN ntile({DECILES}) OVER (PARTITION BY score IS NULL ORDER BY score, "
                "id) END AS decile FROM insp")
    where = ["true"]
    if reasons:
        where.append("(" + " OR ".join(f"outcome = {literal(r)} OR starts_with(outcome, "
                                       f"{literal(r + ':')})" for r in reasons) + ")")
    if kept is not None:
        where.append(f"outcome {'=' if kept else '<>'} {literal(KEPT)}")
    if domain is not None:
        where.append(f"domain = {literal(domain)}")
    keys = (["domain"] if by_domain or domain else []) + (["decile"] if score else [])
    keys = keys or ["outcome"]
    part = ", ".join(keys)
    rows = con.sql(
        f"SELECT {part}, size, id, domain, source, n_tokens, outcome, combined_score, score, "
        f"text FROM (SELECT *, count(*) OVER (PARTITION BY {part}) AS size, row_number() OVER "
        f"(PARTITION BY {part} ORDER BY md5({literal(f'{seed}:')} || id), id) AS pick "
        f"FROM insp_d WHERE {' AND '.join(where)}) WHERE pick <= {int(n)} "
        f"ORDER BY {', '.join(f'{k} NULLS LAST' for k in keys)}, pick").fetchall()
    ranges = dict((d, (lo, hi)) for d, lo, hi in con.sql(
        "SELECT decile, min(score), max(score) FROM insp_d GROUP BY 1").fetchall())
    groups: dict[tuple[Any, ...], Group] = {}
    for row in rows:
        key, (size, *fields, text) = tuple(row[:len(keys)]), row[len(keys):]
        if key not in groups:
            groups[key] = Group(_label(dict(zip(keys, key, strict=True)), score, ranges), size)
        groups[key].samples.append(Sample(*fields, excerpt=excerpt(text)))
    if kept is None and not reasons and keys == ["outcome"]:
        order = sorted(groups, key=lambda k: (k[0] != KEPT, k[0]))
        return [groups[k] for k in order], warnings
    return list(groups.values()), warnings


def _label(key: dict[str, Any], score: str | None, ranges: dict[Any, tuple[Any, Any]]) -> str:
    parts = []
    if "outcome" in key:
        parts.append(key["outcome"])
    if "domain" in key:
        parts.append(f"domain {key['domain']}")
    if "decile" in key:
        decile = key["decile"]
        if decile is None:
            parts.append(f"{score} missing")
        else:
            lo, hi = ranges[decile]
            parts.append(f"{score} decile {decile}/{DECILES} [{lo:.4g}, {hi:.4g}]")
    return " · ".join(parts)


def print_groups(console: Console, groups: list[Group], score: str | None) -> None:
    """Each group as a rule with its size, then one header line and excerpt per sample."""
    if not groups:
        console.print("no documents match these filters")
    for group in groups:
        console.rule(f"[bold]{escape(group.label)}[/] · {group.size:,} docs", align="left")
        for s in group.samples:
            combined = "-" if s.combined_score is None else f"{s.combined_score:.3f}"
            extra = "" if score in (None, "combined_score") else (
                f" · {score} {'-' if s.score is None else format(s.score, '.4g')}")
            console.print(f"[cyan]{escape(s.id)}[/] · {escape(s.domain)} · "
                          f"{escape(s.source or '-')} · {s.n_tokens:,} tokens · "
                          f"{escape(s.outcome)} · combined_score {combined}{escape(extra)}")
            console.print(f"  {escape(s.excerpt)}", style="dim" if s.outcome != KEPT else None,
                          soft_wrap=False)
        console.print()
