"""Sections about the fitted models: Meta-rater (score weights) and the domain mixture."""

from __future__ import annotations

import pandas as pd

from metamix.report import charts_fit as charts
from metamix.report import metarater_data, mix_data
from metamix.report.context import RunContext
from metamix.report.model import Figure, Section, Table


def metarater_section(ctx: RunContext) -> Section | None:
    run = metarater_data.load(ctx.run_dir)
    if run is None:
        return None
    s = run.summary
    section = Section("metarater", "Meta-rater: learned score weights", intro=(
        f"{s.get('k', '?')} Dirichlet weight vectors over {len(s.get('scores') or [])} scores, "
        f"one proxy run each on the same tokens per domain, judged on the report half of the "
        f"targets ({run.target}), plus random selections and single-score baselines; each "
        "target family is judged on weights fitted without it."))
    section.notes += [f"Verdict: {v}" for v in s.get("verdicts") or []]
    families = metarater_data.held_out_families(run)
    if not families.empty:
        section.add(Table("metarater-families", "Each target family held out of the fit: "
                          "gap to random in noise std (negative = better)", families))
    head = metarater_data.headline(run)
    if not head.empty:
        section.add(Table("metarater-headline", "Headline numbers", head))
    oof = metarater_data.oof_predictions(run, ctx.options.seed)
    section.add(Figure(
        "metarater-oof", "Regressors: predicted vs actual objective (K-fold, fit half)",
        "Out-of-fold predictions for the Dirichlet runs; dashed: y = x.",
        charts.predicted_vs_actual(oof, ["regressor"])) if not oof.empty else None,
        "Regressor K-fold scatter: no out-of-fold predictions in summary.json.")
    weights = metarater_data.learned_weights(run)
    section.add(Figure(
        "metarater-weights", "Learned score weights and importances",
        "Weights as select.weights_file applies them to the normalized scores.",
        charts.learned_weights(weights)) if not weights.empty else None,
        "Learned weights: weights.json has none.")
    base = metarater_data.baselines(run)
    lengths = metarater_data.doc_lengths(run)
    dirichlet = lengths[lengths["run_id"].str.fullmatch(r"dirichlet-\d+")]
    section.add(Figure(
        "metarater-baselines", "Learned weights against the baselines",
        "Report-half objective; bars: ± 2 noise std; grey band: 10–90% of the Dirichlet "
        "runs.", charts.baselines(base, dirichlet)) if not base.empty else None,
        "Baselines: summary.json has no learned or baseline losses.")
    section.add(Figure(
        "metarater-doc-length", "Does the loss follow document length?",
        "Each run's selection: mean tokens per document against its loss.",
        charts.doc_lengths(lengths)) if not lengths.empty else None,
        "Document-length diagnostics: runs.parquet lacks selection sizes.")
    diag = metarater_data.doc_length_diagnostics(run)
    if not diag.empty:
        section.add(Table("metarater-doc-length-table", "Document-length diagnostics", diag))
    return section


def mix_section(ctx: RunContext) -> Section | None:
    mix = mix_data.load(ctx.run_dir)
    if mix is None:
        return None
    m = mix.mixture or {}
    chosen = (m.get("provenance") or {}).get("surrogate", "?")
    section = Section("mixture", "Domain mixture", intro=(
        f"Chosen with the {chosen} surrogate; predicted objective "
        f"{_fmt(m.get('predicted_loss'))}, actual proxy loss {_fmt(m.get('actual_proxy_loss'))}."
        if m else "mixture/weights.json is missing: the mix step did not finish."))
    kfold = mix_data.surrogate_kfold(mix)
    section.add(Figure(
        "mix-kfold", "Surrogates: K-fold Spearman with and without MDE features",
        f"The mix step's own K-fold table; outlined: the surrogate it chose ({chosen}).",
        charts.surrogate_kfold(kfold)) if not kfold.empty else None,
        "Surrogate K-fold table: not in mixture/weights.json.")
    seed = ctx.options.seed if ctx.options.mix_seed is None else ctx.options.mix_seed
    oof = mix_data.surrogate_oof(mix, folds=ctx.options.mix_folds, seed=seed)
    if mix.saved_oof is None and not oof.empty:
        section.notes.append(
            "Surrogate scatter: out-of-fold predictions are not saved by the mix step, so "
            f"the report refits {', '.join(mix_data.CHEAP_SURROGATES)} (same folds and seed; "
            "MDE features from runs.parquet, computed on all validation tokens); the GP "
            "is not refitted (minutes).")
    section.add(Figure(
        "mix-oof", "Surrogates: predicted vs actual objective (K-fold)",
        "Out-of-fold predictions of the objective for the sampled and BO runs; dashed: y = x.",
        charts.predicted_vs_actual(oof, ["surrogate", "features"], columns=2))
        if not oof.empty else None,
        "Surrogate scatter: too few runs in mix/runs.parquet.")
    weights = mix_data.weights_vs_prior(mix)
    section.add(Figure(
        "mix-weights", "Chosen mixture, token prior and availability caps",
        "Ticks: the most each domain may take (max_epochs × available tokens).",
        charts.mixture_weights(weights)) if not weights.empty else None,
        "Mixture weights: mixture/weights.json is missing.")
    final = mix_data.final_losses(mix)
    section.add(Figure(
        "mix-final", "Chosen mixture: predicted and actual loss per validation domain", "",
        charts.final_losses(final)) if not final.empty else None, "")
    trace = mix_data.search_trace(mix)
    section.add(Figure(
        "mix-trace", "Search trace: objective per proxy run and best so far",
        "Sampled mixtures first, then BO batches, then the final run of the chosen mixture.",
        charts.search_trace(trace)) if not trace.empty else None,
        "Search trace: mix/runs.parquet is missing.")
    if not weights.empty:
        section.add(Table("mix-table", "Chosen mixture", weights))
    return section


def _fmt(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) and pd.notna(value) else "n/a"
