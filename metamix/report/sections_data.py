"""Sections about the data: corpus and accounting, scores, selection. Each figure is added
only when its inputs exist; otherwise the section says what was skipped and why."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from metamix.report import charts_data as charts
from metamix.report import corpus_data, scores_data, selection_data
from metamix.report.context import RunContext
from metamix.report.model import Figure, Section, Table
from metamix.report.runfiles import sample_rows, shard_paths


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def corpus_section(ctx: RunContext) -> Section | None:
    manifests = corpus_data.stage_manifests(ctx.run_dir)
    counts = corpus_data.domain_counts(ctx.run_dir)
    if not manifests and counts.empty:
        return None
    s = Section("corpus", "Corpus and accounting")
    if not counts.empty:
        train = counts[counts["split"] == "train"]
        s.intro = (f"{int(train['docs'].sum()):,} training documents in {len(train)} domains"
                   + (f", {int(train['tokens'].sum()):,} tokens" if train["tokens"].notna().all()
                      else "") + ".")
        s.add(Figure("corpus-domains", "Documents and tokens per domain",
                     "Training shards (scored/) and the held-out validation split.",
                     charts.domain_counts(counts)))
    accounting = corpus_data.stage_accounting(manifests, ctx.selection_summary)
    if not accounting.empty:
        broken = accounting.loc[~accounting["adds_up"], "stage"].tolist()
        s.add(Figure("corpus-accounting", "Every row accounted for, per stage",
                     "read = written + dropped + quarantined ("
                     + ("holds for every stage" if not broken else
                        f"DOES NOT HOLD for {', '.join(broken)}") + "); select drops the "
                     "documents it does not keep.",
                     charts.accounting(corpus_data.accounting_long(accounting),
                                       list(accounting["stage"]))))
        s.add(Table("corpus-accounting-table", "Rows per stage", accounting))
    reasons = corpus_data.reasons(manifests, ctx.selection_summary)
    s.add(Figure("corpus-reasons", "Why rows were dropped or quarantined",
                 "Named reasons from each stage's manifest (quarantine/ holds the rows).",
                 charts.reasons(reasons)) if not reasons.empty else None,
          "Drop and quarantine reasons: no stage dropped or quarantined a row.")
    examples = corpus_data.quarantine_examples(ctx.run_dir)
    if not examples.empty:
        s.add(Table("corpus-quarantine", "Quarantined rows (first of each reason)", examples,
                    wide_columns=("detail",)))
    lengths = corpus_data.length_histogram(ctx.sample) if ctx.scored else pd.DataFrame()
    s.add(Figure("corpus-lengths", "Document length per domain",
                 f"Tokens per document (the run's tokenizer), from {ctx.sample_note()}.",
                 charts.lengths(lengths)) if not lengths.empty else None,
          "Document lengths: no scored shards with n_tokens.")
    return s


def scores_section(ctx: RunContext) -> Section | None:
    if not ctx.scored:
        return None
    numeric, reason_cols = ctx.columns
    s = Section("scores", "Scores", intro=f"{len(numeric)} score columns and "
                f"{len(reason_cols)} filter decisions per document; distributions and "
                f"correlations from {ctx.sample_note()}.")
    sample = ctx.sample
    for title, cols in scores_data.group_columns(numeric):
        # a constant column (all zero, say) has one bin: its outline draws nothing, so it
        # gets no panel, only its value in the caption
        drawn = scores_data.varying(sample, cols)
        constant = scores_data.constant_values(sample, [c for c in cols if c not in drawn])
        if not drawn:
            s.notes.append(f"Score distributions: {title}: every column is constant "
                           f"({constant}).")
            continue
        hist = scores_data.score_histograms(sample, drawn)
        s.add(Figure(f"scores-{slug(title)}", f"Score distributions: {title}",
                     "Share of each domain's documents per bin (y); values beyond the "
                     "0.5–99.5% quantiles fall in the edge bins; (log10 1+x): skewed scores binned "
                     "on log10(1 + value)." + (f" Constant, not drawn: {constant}."
                                                if constant else ""),
                     charts.score_distributions(hist)))
    corr = scores_data.correlation(sample, numeric)
    dropped = sorted(set(numeric) - set(scores_data.varying(sample, numeric)))
    s.add(Figure("scores-correlation", "Correlation of the score columns",
                 "Spearman ρ over the sample." + (f" Constant, left out: {', '.join(dropped)}."
                                                  if dropped else ""),
                 charts.correlation(corr, numeric)) if not corr.empty else None,
          "Correlation matrix: fewer than two score columns vary.")
    drops = scores_data.drop_reasons(ctx.scored, reason_cols)
    s.add(Figure("scores-drop-reasons", "What each filter would drop, per domain",
                 "Every scored document; scorers only annotate, select.hard_filters decides.",
                 charts.drop_reasons(drops, ctx.domains)) if not drops.empty else None,
          "Drop reasons: no *_drop_reason column has a reason."
          if reason_cols else "Drop reasons: no filter scorer (*_drop_reason columns) ran.")
    dims = [c for c in numeric if c.startswith(scores_data.PRRC_PREFIX)]
    examples = scores_data.prrc_examples(ctx.scored, dims, ctx.options.examples,
                                         ctx.options.excerpt_chars)
    for dim, rows in examples.groupby("dimension", sort=False):
        s.add(Table(f"scores-examples-{slug(dim)}", f"PRRC {dim}: top and bottom documents",
                    rows.drop(columns="dimension").reset_index(drop=True),
                    caption=f"First {ctx.options.excerpt_chars} characters; whole corpus.",
                    wide_columns=("excerpt",)))
    if not dims:
        s.notes.append("PRRC examples: no prrc_* score column (add the prrc scorer).")
    return s


def selection_section(ctx: RunContext) -> Section | None:
    summary = ctx.selection_summary
    if summary is None:
        return None
    totals = summary.get("totals") or {}
    s = Section("selection", "Selection", intro=(
        f"Kept {totals.get('docs_after', 0):,} of {totals.get('docs_before', 0):,} documents "
        f"and {totals.get('tokens_after', 0):,} of {totals.get('tokens_before', 0):,} tokens "
        f"(mode {(summary.get('config') or {}).get('mode', '?')}, weights from "
        f"{(summary.get('resolved') or {}).get('weights_source', 'the config')})."))
    per_domain = selection_data.tokens_per_domain(summary)
    if not per_domain.empty:
        s.add(Figure("selection-tokens", "Tokens per domain, before and after selection",
                     "Ticks: the per-domain token budget (token_budget mode).",
                     charts.tokens_kept(selection_data.tokens_long(per_domain), per_domain)))
    drops = selection_data.drops_per_domain(summary)
    s.add(Figure("selection-drops", "Why documents were not kept", "not_selected: below the "
                 "cut or over the budget; other reasons are hard filters.",
                 charts.selection_drops(drops)) if not drops.empty else None,
          "Drops: every document was kept.")
    columns = selection_data.weighted_columns(summary)
    selected = shard_paths(ctx.run_dir / "selected")
    hist = pd.DataFrame()
    if columns and selected and ctx.scored:
        after = _sample(ctx, selected, columns)
        before = ctx.sample if set(columns) <= set(ctx.sample.columns) else _sample(
            ctx, ctx.scored, columns)
        hist = selection_data.before_after(before, after, columns)
    s.add(Figure("selection-before-after", "The most heavily weighted scores, before and "
                 "after selection", "Share of documents per bin, on the bins of the scored "
                 "corpus; panels in order of |weight|.",
                 charts.before_after(hist, columns)) if not hist.empty else None,
          "Score distributions before/after: no weighted score columns or no selected/ "
          "shards.")
    if not per_domain.empty:
        s.add(Table("selection-table", "Kept per domain", per_domain))
    return s


def _sample(ctx: RunContext, paths: list[Path], columns: list[str]) -> pd.DataFrame:
    return sample_rows(paths, ["domain", *columns], ctx.options.sample_rows, ctx.options.seed)
