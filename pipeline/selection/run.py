"""Select the best-scoring documents from scored shards (Meta-rater style), per domain.

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
    ``hard_filters`` order. Survivors are ranked by combined_score descending, ties broken by
    ``id`` ascending, then:

    * ``top_fraction``: keep the best ceil(fraction * n) survivors, n counted globally or,
      with ``per_domain``, within each domain (so a non-empty group keeps at least one doc).
    * ``token_budget``: always per domain; keep docs in rank order while the cumulative
      ``n_tokens`` stays <= the domain budget. The doc that would cross the budget is *not*
      kept, and neither is anything ranked below it (no bin-packing of smaller docs), so a
      domain lands at most one document short of its budget. Budgets are
      floor(weight_d * total) from ``mixture_file`` (total = ``token_budget`` if set, else the
      file's ``total_tokens``), or without a mixture file ``token_budget`` split in proportion
      to each domain's tokens after hard filters. Domains whose available tokens fall short
      of their budget are listed under ``warnings`` in the summary.

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
    file per input domain, empty if nothing was kept): all input columns plus
    ``combined_score`` (float64) and ``selection_rank`` (int64, 1 = best in domain), ordered
    by combined_score desc, id asc, zstd, fixed ``ROW_GROUP_ROWS`` row groups, so reruns are
    byte-identical. ``out_dir/selection_summary.json`` is written last; it is deleted when a
    run starts, so its presence means ``selected/`` is complete.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import duckdb
from rich.console import Console

from metamix.base.atomic import write_json_atomic
from metamix.pipeline.selection.config import SelectConfig, resolve_weights
from metamix.pipeline.selection.files import Normalization, SelectionError
from metamix.pipeline.selection.quota import define_outcomes
from metamix.pipeline.selection.summary import (
    build_summary,
    print_summary,
    score_stats,
)
from metamix.pipeline.selection.write import domain_file_name, write_selected

REQUIRED_COLUMNS = ("id", "domain", "n_tokens")
OUTPUT_COLUMNS = ("combined_score", "selection_rank")
SUMMARY_NAME = "selection_summary.json"
_NUMERIC_TYPE = re.compile(
    r"^(U?(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT)|FLOAT|DOUBLE|DECIMAL\(.*\)|BOOLEAN)$"
)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _double(value: float) -> str:
    # Via a string so DuckDB parses it as a correctly rounded DOUBLE, not a DECIMAL.
    return f"CAST({_literal(repr(float(value)))} AS DOUBLE)"


def _source_sql(paths: list[Path]) -> str:
    files = ", ".join(_literal(str(p)) for p in paths)
    return f"read_parquet([{files}], union_by_name = true)"


def _check_columns(
    con: duckdb.DuckDBPyConnection, source: str, weights: dict[str, float], cfg: SelectConfig
) -> None:
    types = {name: dtype for name, dtype, *_ in con.sql(f"DESCRIBE SELECT * FROM {source}")
             .fetchall()}
    for name in REQUIRED_COLUMNS:
        if name not in types:
            raise SelectionError(f"scored input has no required column '{name}'")
    for name in OUTPUT_COLUMNS:
        if name in types:
            raise SelectionError(f"scored input already has a column '{name}' (output name)")
    for name in weights:
        if name not in types:
            raise SelectionError(f"weights.{name}: no such column in the scored input")
        if not _NUMERIC_TYPE.match(types[name]):
            raise SelectionError(f"weights.{name}: column is {types[name]}, not numeric")
    for name in cfg.hard_filters:
        if f"{name}_drop_reason" not in types:
            raise SelectionError(
                f"hard_filters: '{name}' has no column '{name}_drop_reason' in the scored input"
            )


def _build_ranked_table(
    con: duckdb.DuckDBPyConnection,
    source: str,
    weights: dict[str, float],
    normalization: Normalization,
    cfg: SelectConfig,
) -> None:
    """Materialize everything selection needs except text: small enough to spill cheaply."""
    reason_cases = " ".join(
        f"WHEN {_ident(f + '_drop_reason')} IS NOT NULL "
        f"THEN {_literal(f + ':')} || {_ident(f + '_drop_reason')}"
        for f in cfg.hard_filters
    )
    drop_reason = f"CASE {reason_cases} END" if cfg.hard_filters else "CAST(NULL AS VARCHAR)"
    raw = [
        f"CASE WHEN isfinite(CAST({_ident(c)} AS DOUBLE)) THEN CAST({_ident(c)} AS DOUBLE) END"
        f" AS raw_{i}"
        for i, c in enumerate(weights)
    ]
    con.execute(
        f"CREATE TEMP TABLE base AS SELECT id, domain, n_tokens, {drop_reason} AS drop_reason"
        f"{''.join(', ' + r for r in raw)} FROM {source}"
    )
    [(n_rows, n_ids, null_domains, null_tokens)] = con.sql(
        "SELECT count(*), count(DISTINCT id), count(*) - count(domain), "
        "count(*) - count(n_tokens) FROM base"
    ).fetchall()
    if n_ids != n_rows:
        raise SelectionError(f"scored input: 'id' is not unique ({n_rows - n_ids} duplicates)")
    if null_domains or null_tokens:
        raise SelectionError(
            f"scored input: {null_domains} rows with NULL domain, {null_tokens} with NULL n_tokens"
        )

    terms = []
    for i, w in enumerate(weights.values()):
        missing = "0.0" if w >= 0 else "5.0"
        if normalization == "minmax":
            norm = (f"CASE WHEN hi_{i} > lo_{i} THEN 5.0 * (raw_{i} - lo_{i}) / (hi_{i} - lo_{i})"
                    " ELSE 0.0 END")
        else:
            norm = f"5.0 * percent_rank() OVER (PARTITION BY raw_{i} IS NULL ORDER BY raw_{i})"
        terms.append(f"{_double(w)} * (CASE WHEN raw_{i} IS NULL THEN {missing} ELSE {norm} END)")
    bounds = ", ".join(f"min(raw_{i}) AS lo_{i}, max(raw_{i}) AS hi_{i}"
                       for i in range(len(weights)))
    raw_cols = "".join(f", raw_{i}" for i in range(len(weights)))
    con.execute(
        f"CREATE TEMP TABLE scored AS WITH bounds AS (SELECT {bounds} FROM base) "
        f"SELECT id, domain, n_tokens, drop_reason{raw_cols}, "
        f"CAST({' + '.join(terms)} AS DOUBLE) AS combined_score FROM base, bounds"
    )
    order = "ORDER BY combined_score DESC, id"
    candidate = "drop_reason IS NULL"
    con.execute(
        f"CREATE TEMP TABLE ranked AS SELECT *, "
        f"CASE WHEN {candidate} THEN row_number() OVER "
        f"(PARTITION BY domain, {candidate} {order}) END AS domain_rank, "
        f"CASE WHEN {candidate} THEN row_number() OVER (PARTITION BY {candidate} {order}) END"
        f" AS global_rank, "
        f"CASE WHEN {candidate} THEN sum(n_tokens) OVER (PARTITION BY domain, {candidate} "
        f"{order} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) END AS cumulative_tokens "
        f"FROM scored"
    )
    con.execute("DROP TABLE base")
    con.execute("DROP TABLE scored")


def _connect(cfg: SelectConfig, spill_dir: Path) -> duckdb.DuckDBPyConnection:
    threads = cfg.duckdb_threads or min(os.cpu_count() or 1, 8)
    return duckdb.connect(config={
        "memory_limit": cfg.duckdb_memory_limit,
        "threads": threads,
        "temp_directory": str(spill_dir),
        "preserve_insertion_order": False,
    })


def run_selection(
    cfg: SelectConfig, scored_paths: list[Path], out_dir: Path, *, progress: bool = True,
    console: Console | None = None,
) -> dict[str, Any]:
    """Select documents, write ``selected/<domain>.parquet`` and the summary; return it."""
    if not scored_paths:
        raise SelectionError("no scored Parquet shards given to select from")
    missing = [p for p in scored_paths if not Path(p).is_file()]
    if missing:
        raise SelectionError(f"scored shard not found: {missing[0]}")
    weights, normalization, weights_source = resolve_weights(cfg)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary_path = out_dir / SUMMARY_NAME
    summary_path.unlink(missing_ok=True)
    spill_dir = out_dir / f".selection-spill-{os.getpid()}"
    con = _connect(cfg, spill_dir)
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
    source = _source_sql([Path(p) for p in scored_paths])
    warnings: list[str] = []
    _check_columns(con, source, weights, cfg)
    _build_ranked_table(con, source, weights, normalization, cfg)
    quotas = define_outcomes(con, cfg, warnings)
    counts = con.sql(
        "SELECT domain, coalesce(outcome, ''), count(*), sum(n_tokens) "
        "FROM outcomes GROUP BY ALL ORDER BY ALL").fetchall()
    domains = sorted({row[0] for row in counts})
    files = {d: domain_file_name(d) for d in domains}
    score_columns = {"combined_score": "combined_score",
                     **{name: f"raw_{i}" for i, name in enumerate(weights)}}
    stats_before = score_stats(con, "outcomes", "TRUE", score_columns)
    stats_after = score_stats(con, "outcomes", "outcome IS NULL", score_columns)
    con.execute("CREATE TEMP TABLE kept AS SELECT id, domain, combined_score, "
                "domain_rank AS selection_rank FROM outcomes WHERE outcome IS NULL")
    con.execute("DROP VIEW outcomes")
    con.execute("DROP TABLE ranked")
    output_sql = (
        f"SELECT s.*, k.combined_score, k.selection_rank FROM {source} AS s "
        "JOIN kept AS k ON s.id = k.id ORDER BY k.domain, k.combined_score DESC, s.id"
    )
    written = write_selected(con, output_sql, out_dir / "selected", files,
                             total_rows=sum(r[2] for r in counts if r[1] == ""),
                             progress=progress)
    summary = build_summary(
        inputs=[str(p) for p in scored_paths],
        config=cfg.model_dump(mode="json"),
        resolved={"weights": weights, "normalization": normalization,
                  "weights_source": weights_source},
        quotas=quotas,
        outcome_counts=counts,
        written=written,
        files={d: f"selected/{name}" for d, name in files.items()},
        stats_before=stats_before,
        stats_after=stats_after,
        warnings=warnings,
    )
    write_json_atomic(out_dir / SUMMARY_NAME, summary)
    if progress:
        print_summary(summary, console)
    return summary
