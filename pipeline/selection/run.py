"""Select the best-scoring documents from scored shards (Meta-rater style), per domain.

Ranking and cutting happen in ``engine.SelectionEngine``, which Meta-rater's proxy runs use
too; this module adds the output files and the summary.

Scoring
    combined_score = sum_i w_i * norm(s_i), where norm maps each score column onto 0..5 over
    the *whole* scored input (hard-filtered rows included, so a score's scale does not shift
    with the filter set):

    * ``minmax``: 5 * (s - min) / (max - min), as Meta-rater does; a constant column is 0.
    * ``percentile``: 5 * percent_rank(s) (ties share the lowest rank; robust to outliers).

    NULL, NaN and +-inf scores count as the *worst* value: norm 0 for a positive weight and
    norm 5 for a negative one (a negative weight means "lower is better"), so a document can
    never gain rank by missing a signal.

Selection
    Rows with a non-NULL ``<filter>_drop_reason`` for any filter in ``hard_filters`` are
    dropped first; a row failing several filters is counted once, under the first filter in
    ``hard_filters`` order. Before them, documents the run's dedup pass did not keep
    (``dups/`` beside ``scored/``: ``dup_exact_keep`` / ``dup_near_keep`` false) are dropped
    as ``duplicate_exact`` / ``duplicate_near`` unless ``drop_duplicates`` is false; the
    ``dup_*`` columns are joined by id either way. Survivors are ranked by combined_score
    descending, ties broken by ``id`` ascending, then:

    * ``top_fraction``: keep the best ceil(fraction * n) survivors, n counted globally or,
      with ``per_domain``, within each domain (so a non-empty group keeps at least one doc).
    * ``token_budget``: always per domain; fill each domain's budget first-fit in rank
      order: a doc that would push the domain over its budget is skipped and the scan goes
      on, so a domain ends less than its smallest remaining doc short of its budget, and any
      two selections under the same budgets hold the same tokens per domain. Budgets are
      floor(weight_d * total) from ``mixture_file`` (total = ``token_budget`` if set, else the
      file's ``total_tokens``), or without a mixture file ``token_budget`` split in proportion
      to each domain's eligible tokens. A domain whose eligible tokens fall short of its
      mixture budget keeps them all and its missing tokens go to the other domains in
      proportion to their mixture weights, capped by what they have
      (``shares.redistribute``); each shortfall is listed under ``warnings``. The summary's
      ``shares`` holds the shipped shares (each domain's share of the kept tokens) beside
      the chosen ones.

Files
    Weights file (written by ``save_weights_file``, e.g. by the weight-learning stage)::

        {"weights": {"rps_doc_frac_unique_words": 0.7, "prrc_professionalism": 0.3},
         "normalization": "minmax",          # optional; what the weights were fitted under
         "predicted_loss": 2.91, ...}        # any other keys are kept but ignored

    If the file names a normalization and the config sets a different one explicitly, that
    is an error; if the config leaves ``normalization`` at its default, the file's wins.

    Mixture file, flat ``{"web": 0.6, "code": 0.4}`` or nested
    ``{"weights": {"web": 0.6, "code": 0.4}, "total_tokens": 1000000, ...}`` (other keys
    ignored). Weights are >= 0 and sum to 1; every domain in the data needs a weight.

Outputs
    ``out_dir/selected/<domain>.parquet`` (domain percent-encoded if not filename-safe; one
    file per input domain, empty if nothing was kept): all input columns (and the
    ``dup_*`` columns when the run has ``dups/``) plus
    ``combined_score`` (float64) and ``selection_rank`` (int64, 1 = best in domain), ordered
    by combined_score desc, id asc, zstd, fixed ``ROW_GROUP_ROWS`` row groups, so reruns are
    byte-identical. ``out_dir/selection_summary.json`` is written last; it is deleted when a
    run starts, so its presence means ``selected/`` is complete.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import duckdb
from rich.console import Console

from metamix.base.atomic import write_json_atomic
from metamix.base.storage import as_path, is_remote, relative
from metamix.pipeline.selection.config import SelectConfig, resolve_weights
from metamix.pipeline.selection.eligible import Eligibility, open_engine
from metamix.pipeline.selection.engine import connect, register_object_stores
from metamix.pipeline.selection.files import Normalization, SelectionError
from metamix.pipeline.selection.shares import rounded_shares
from metamix.pipeline.selection.summary import build_summary, print_summary, score_stats
from metamix.pipeline.selection.write import domain_file_name, write_selected

SUMMARY_NAME = "selection_summary.json"


def run_selection(
    cfg: SelectConfig, scored_paths: list[Path], out_dir: Path, *, progress: bool = True,
    console: Console | None = None,
) -> dict[str, Any]:
    """Select documents, write ``selected/<domain>.parquet`` and the summary; return it."""
    weights, normalization, weights_source = resolve_weights(cfg)
    out_dir = as_path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary_path = out_dir / SUMMARY_NAME
    summary_path.unlink(missing_ok=True)
    # DuckDB spills to a local folder, also when the outputs go to an object store
    spill_dir = (Path(tempfile.gettempdir()) if is_remote(out_dir) else out_dir
                 ) / f".selection-spill-{os.getpid()}"
    con = connect(cfg.duckdb_memory_limit, cfg.duckdb_threads, spill_dir)
    register_object_stores(con, scored_paths)
    try:
        return _select(con, cfg, scored_paths, out_dir, weights, normalization,
                       weights_source, progress=progress, console=console)
    except (duckdb.IOException, duckdb.InvalidInputException) as exc:
        # Unreadable or corrupt shards: DuckDB's message names the file; keep it to one line.
        raise SelectionError(f"reading scored shards: {str(exc).splitlines()[0]}") from exc
    finally:
        con.close()
        shutil.rmtree(spill_dir, ignore_errors=True)


def _select(
    con: duckdb.DuckDBPyConnection,
    cfg: SelectConfig,
    scored_paths: list[Path],
    out_dir: Path,
    weights: dict[str, float],
    normalization: Normalization,
    weights_source: str,
    *,
    progress: bool,
    console: Console | None,
) -> dict[str, Any]:
    engine = open_engine(con, Eligibility.of(cfg), scored_paths, list(weights),
                         normalization=normalization,
                         weights_key=weights_source if weights_source == "select.weights"
                         else f"{weights_source}: weights")
    selection = engine.select(weights, cfg.cut())
    counts = con.sql(
        "SELECT domain, coalesce(outcome, ''), count(*), sum(n_tokens) "
        "FROM outcomes GROUP BY ALL ORDER BY ALL").fetchall()
    if selection.kept.num_rows == 0:
        _refuse_empty(counts)
    domains = sorted({row[0] for row in counts})
    files = {d: domain_file_name(d) for d in domains}
    score_columns = {"combined_score": "combined_score",
                     **{name: f"raw_{i}" for i, name in enumerate(weights)}}
    con.execute("CREATE OR REPLACE TEMP VIEW outcome_scores AS SELECT o.*"
                f"{''.join(f', s.raw_{i}' for i in range(len(weights)))} "
                "FROM outcomes o JOIN raw_scores s USING (id)")
    stats_before, stats_after = score_stats(con, "outcome_scores", "outcome IS NULL",
                                            score_columns)
    # The kept rows straight from ``outcomes`` (registering the Arrow table would make
    # DuckDB import pandas: half a second of a small selection).
    output_sql = (
        f"SELECT s.*, k.combined_score, k.selection_rank FROM {engine.source} AS s "
        "JOIN (SELECT id, domain, combined_score, domain_rank AS selection_rank FROM outcomes "
        "WHERE outcome IS NULL) AS k ON s.id = k.id "
        "ORDER BY k.domain, k.combined_score DESC, s.id"
    )
    written = write_selected(con, output_sql, out_dir / "selected", files,
                             total_rows=selection.kept.num_rows, progress=progress)
    summary = build_summary(
        inputs=[relative(p, out_dir) for p in scored_paths],
        config=cfg.model_dump(mode="json"),
        resolved={"weights": weights, "normalization": normalization,
                  "weights_source": weights_source},
        quotas=selection.quotas,
        outcome_counts=counts,
        written=written,
        files={d: f"selected/{name}" for d, name in files.items()},
        stats_before=stats_before,
        stats_after=stats_after,
        warnings=selection.warnings,
    )
    summary["shares"] = shipped_shares(summary, selection.quotas)
    write_json_atomic(out_dir / SUMMARY_NAME, summary)
    if progress:
        print_summary(summary, console)
    return summary


def shipped_shares(summary: dict[str, Any], quotas: dict[str, Any]) -> dict[str, Any]:
    """``shipped``: each domain's share of the kept tokens (what every artefact downstream
    carries); ``chosen``: the mixture's chosen shares (token budgets from a mixture file)."""
    tokens = {d: e["tokens_after"] for d, e in summary["domains"].items()}
    return {"shipped": rounded_shares(tokens) if sum(tokens.values()) else None,
            "chosen": quotas.get("chosen_weights"), "mixture": quotas.get("mixture_weights")}


def _refuse_empty(counts: list[tuple[str, str, int, int]]) -> None:
    """An empty selection is never what a run is for: stop with why every row went."""
    reasons: dict[str, int] = {}
    for _, outcome, docs, _ in counts:
        reasons[outcome] = reasons.get(outcome, 0) + docs
    top = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    raise SelectionError(f"the selection kept 0 of the {sum(reasons.values()):,} scored rows; "
                         f"top reasons: {', '.join(f'{r} {n:,}' for r, n in top) or 'none'}")
