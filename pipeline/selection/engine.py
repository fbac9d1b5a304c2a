"""The one place documents are ranked and cut: ``metamix select`` and every Meta-rater proxy
run go through ``SelectionEngine``, so a proxy trains on exactly what ``select`` would ship
for the same weights, mode and budgets.

The engine reads the scored shards once into a DuckDB table (ids, domains, token counts,
hard-filter reasons and each score column normalized onto 0..5 over the whole input), then
ranks and cuts it for any number of weight vectors. Ranking by a seeded hash of the id
instead of a score gives the random baseline through the same cut.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from metamix.base.storage import as_path
from metamix.pipeline.selection.config import Cut
from metamix.pipeline.selection.files import Normalization, SelectionError
from metamix.pipeline.selection.quota import define_outcomes

REQUIRED_COLUMNS = ("id", "domain", "n_tokens")
OUTPUT_COLUMNS = ("combined_score", "selection_rank")
#: written by the run's dedup pass (``dups/``); ``select`` joins them by id
DUP_COLUMNS = ("dup_exact_cluster", "dup_exact_keep", "dup_near_cluster", "dup_near_keep")
NUMERIC_TYPE = re.compile(
    r"^(U?(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT)|FLOAT|DOUBLE|DECIMAL\(.*\)|BOOLEAN)$"
)


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def double(value: float) -> str:
    # Via a string so DuckDB parses it as a correctly rounded DOUBLE, not a DECIMAL.
    return f"CAST({literal(repr(float(value)))} AS DOUBLE)"


def source_sql(paths: Sequence[Path]) -> str:
    files = ", ".join(literal(str(p)) for p in paths)
    return f"read_parquet([{files}], union_by_name = true)"


def register_object_stores(con: duckdb.DuckDBPyConnection, paths: Sequence[Any]) -> None:
    """Let DuckDB read the object-store paths among ``paths`` through their fsspec
    filesystem (no httpfs extension to download: credentials as for every other read)."""
    seen: set[str] = set()
    for path in paths:
        fs = getattr(path, "fs", None)
        protocol = getattr(path, "protocol", "")
        if fs is None or protocol in ("", "file", "local") or protocol in seen:
            continue
        seen.add(protocol)
        con.register_filesystem(fs)


def connect(memory_limit: str = "2GB", threads: int | None = None,
            spill_dir: Path | None = None) -> duckdb.DuckDBPyConnection:
    config: dict[str, str | int | bool] = {
        "memory_limit": memory_limit,
        # None = all cores, capped at 8 (window sorts stop scaling and memory per thread grows)
        "threads": threads or min(os.cpu_count() or 1, 8),
        "preserve_insertion_order": False,
    }
    if spill_dir is not None:
        config["temp_directory"] = str(spill_dir)
    return duckdb.connect(config=config)


#: The drop reason of rows that ``select.where`` excludes.
WHERE_REASON = "where"


def check_where(con: duckdb.DuckDBPyConnection, source: str, where: str,
                columns: list[str], key: str = "select.where") -> None:
    """Stop unless ``where`` is one true/false SQL expression over the scored columns,
    naming an unknown column (DuckDB's own message suggests near names)."""
    empty = f"(SELECT * FROM {source} LIMIT 0)"
    try:
        con.sql(f"SELECT count(*) FROM {empty} WHERE ({where})").fetchall()  # no aggregates
        [(_, dtype, *_)] = con.sql(f"DESCRIBE SELECT ({where}) AS keep FROM {empty}").fetchall()
    except duckdb.BinderException as exc:
        message = str(exc).splitlines()
        unknown = re.search(r'Referenced column "([^"]+)" not found', message[0])
        if unknown:
            hint = next((m for m in message[1:] if "Candidate" in m), "").strip()
            raise SelectionError(
                f"{key}: no column {unknown.group(1)!r} in the scored input"
                f"{' (' + hint + ')' if hint else ''}; columns: {', '.join(columns)}") from None
        raise SelectionError(f"{key}: {where!r}: {message[0]}") from None
    except duckdb.Error as exc:
        raise SelectionError(f"{key}: {where!r} is not an SQL condition: "
                             f"{str(exc).splitlines()[0]}") from None
    if dtype != "BOOLEAN":
        raise SelectionError(f"{key}: {where!r} is {dtype}, not a true/false "
                             "condition (e.g. lang = 'en')")


@dataclass
class Selection:
    """What one cut kept, and the per-domain accounting behind it."""

    kept: pa.Table                    # id, domain, n_tokens, combined_score, selection_rank
    quotas: dict[str, object]
    warnings: list[str] = field(default_factory=list)

    def tokens_per_domain(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for domain, n in zip(self.kept.column("domain").to_pylist(),
                             self.kept.column("n_tokens").to_pylist(), strict=True):
            out[domain] = out.get(domain, 0) + int(n)
        return dict(sorted(out.items()))


class SelectionEngine:
    """Ranks and cuts one scored corpus under many weight vectors, on one DuckDB connection.

    Normalization (over the *whole* input, hard-filtered rows included, so a score's scale
    does not shift with the filter set):

    * ``minmax``: 5 * (s - min) / (max - min), as Meta-rater does; a constant column is 0;
    * ``percentile``: 5 * percent_rank(s) (ties share the lowest rank).

    NULL, NaN and +-inf count as the worst value: 0 under a positive weight, 5 under a
    negative one, so a document never gains rank by missing a signal.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, scored_paths: Sequence[Path],
                 columns: Sequence[str], *, normalization: Normalization,
                 hard_filters: Sequence[str] = (), duplicate_paths: Sequence[Path] = (),
                 drop_duplicates: bool = False, where: str | None = None,
                 where_key: str = "select.where", weights_key: str = "weights") -> None:
        if not scored_paths:
            raise SelectionError("no scored Parquet shards given to select from")
        missing = [p for p in scored_paths if not as_path(p).is_file()]
        if missing:
            raise SelectionError(f"scored shard not found: {missing[0]}")
        self.con = con
        self.source = source_sql([as_path(p) for p in scored_paths])
        if duplicate_paths:   # the dedup pass's columns, joined by id
            self.source = (f"(SELECT s.*, {', '.join(f'd.{c}' for c in DUP_COLUMNS)} FROM "
                           f"{self.source} AS s LEFT JOIN "
                           f"{source_sql([as_path(p) for p in duplicate_paths])} AS d "
                           "ON s.id = d.id)")
        self.drop_duplicates = drop_duplicates
        self.columns = list(columns)
        self.normalization = normalization
        self.hard_filters = list(hard_filters)
        self.where = where
        self.where_key = where_key
        self.weights_key = weights_key  # where the weights came from, for messages
        self._check_columns()
        self._load()

    def _check_columns(self) -> None:
        types = {name: dtype for name, dtype, *_ in
                 self.con.sql(f"DESCRIBE SELECT * FROM {self.source}").fetchall()}
        for name in REQUIRED_COLUMNS:
            if name not in types:
                raise SelectionError(f"scored input has no required column '{name}'")
        for name in OUTPUT_COLUMNS:
            if name in types:
                raise SelectionError(f"scored input already has a column '{name}' (output name)")
        for name in self.columns:
            if name not in types:
                numeric = [c for c, t in types.items() if NUMERIC_TYPE.match(t)]
                near = difflib.get_close_matches(name, numeric, n=1, cutoff=0.6)
                hint = (f"; did you mean {near[0]!r}?" if near else
                        f"; numeric columns: {', '.join(numeric) or 'none'}")
                raise SelectionError(f"{self.weights_key}.{name}: no such column in the "
                                     f"scored input{hint}")
            if not NUMERIC_TYPE.match(types[name]):
                raise SelectionError(f"{self.weights_key}.{name}: column is {types[name]}, "
                                     "not numeric")
        for name in self.hard_filters:
            if f"{name}_drop_reason" not in types:
                raise SelectionError(
                    f"hard_filters: '{name}' has no column '{name}_drop_reason' in the scored "
                    "input")
        if self.where is not None:
            check_where(self.con, self.source, self.where, list(types), self.where_key)

    def _column_names(self) -> set[str]:
        return {row[0] for row in self.con.sql(f"DESCRIBE SELECT * FROM {self.source}")
                .fetchall()}

    def _has_duplicate_columns(self) -> bool:
        return {"dup_exact_keep", "dup_near_keep"} <= self._column_names()

    def _load(self) -> None:
        """``base``: ids, domains, tokens, the first hard-filter reason, raw and normalized
        scores. Small (no text), so it spills cheaply on big corpora."""
        reason_cases = " ".join(
            f"WHEN {ident(f + '_drop_reason')} IS NOT NULL "
            f"THEN {literal(f + ':')} || {ident(f + '_drop_reason')}" for f in self.hard_filters)
        if self.drop_duplicates and self._has_duplicate_columns():
            reason_cases = ("WHEN dup_exact_keep = false THEN 'duplicate_exact' "
                            "WHEN dup_near_keep = false THEN 'duplicate_near' " + reason_cases)
        if self.where is not None:   # first: rows outside it are not candidates at all
            reason_cases = (f"WHEN NOT coalesce(({self.where}), false) THEN "
                            f"{literal(WHERE_REASON)} {reason_cases}")
        drop_reason = (f"CASE {reason_cases} END" if reason_cases
                       else "CAST(NULL AS VARCHAR)")
        raw = "".join(
            f", CASE WHEN isfinite(CAST({ident(c)} AS DOUBLE)) THEN CAST({ident(c)} AS DOUBLE)"
            f" END AS raw_{i}" for i, c in enumerate(self.columns))
        # a source-neutral cut keeps each source's share; inputs without sources are one source
        source = ("CAST(source AS VARCHAR)" if "source" in self._column_names()
                  else "CAST(NULL AS VARCHAR)")
        try:
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE raw_scores AS SELECT id, domain, "
                             f"{source} AS source, n_tokens, {drop_reason} AS drop_reason{raw} "
                             f"FROM {self.source}")
        except duckdb.Error as exc:
            if self.where is None or isinstance(exc, duckdb.IOException):
                raise
            raise SelectionError(f"{self.where_key}: {self.where!r}: "
                                 f"{str(exc).splitlines()[0]}") from None
        [(n_rows, n_ids, null_domains, null_tokens)] = self.con.sql(
            "SELECT count(*), count(DISTINCT id), count(*) - count(domain), "
            "count(*) - count(n_tokens) FROM raw_scores").fetchall()
        if n_ids != n_rows:
            raise SelectionError(
                f"scored input: 'id' is not unique ({n_rows - n_ids} duplicates)")
        if null_domains or null_tokens:
            raise SelectionError(f"scored input: {null_domains} rows with NULL domain, "
                                 f"{null_tokens} with NULL n_tokens")
        norms = []
        for i in range(len(self.columns)):
            if self.normalization == "minmax":
                norm = (f"CASE WHEN hi_{i} > lo_{i} THEN 5.0 * (raw_{i} - lo_{i}) / "
                        f"(hi_{i} - lo_{i}) ELSE 0.0 END")
            else:
                norm = (f"5.0 * percent_rank() OVER (PARTITION BY raw_{i} IS NULL "
                        f"ORDER BY raw_{i})")
            norms.append(f", CASE WHEN raw_{i} IS NULL THEN NULL ELSE {norm} END AS norm_{i}")
        bounds = ", ".join(f"min(raw_{i}) AS lo_{i}, max(raw_{i}) AS hi_{i}"
                           for i in range(len(self.columns))) or "count(*) AS unused"
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE base AS WITH bounds AS (SELECT {bounds} FROM "
            f"raw_scores) SELECT id, domain, source, n_tokens, drop_reason{''.join(norms)} "
            "FROM raw_scores, bounds")
        self.n_docs = int(n_rows)

    def rank(self, weights: Mapping[str, float] | None, *, random_seed: int | None = None
             ) -> None:
        """Create ``ranked``: combined score and per-domain / global ranks of candidates.

        ``weights`` names columns given to the constructor; with ``random_seed`` instead,
        candidates are ordered by md5 of the seed and id (the random baseline)."""
        if (weights is None) == (random_seed is None):
            raise ValueError("give exactly one of weights or random_seed")
        if weights is not None:
            terms = []
            for name, w in weights.items():
                i = self.columns.index(name)
                terms.append(f"{double(w)} * coalesce(norm_{i}, {'0.0' if w >= 0 else '5.0'})")
            if not terms:
                raise SelectionError("no weights given")
            score = f"CAST({' + '.join(terms)} AS DOUBLE)"
            order = "ORDER BY combined_score DESC, id"
        else:
            score = "CAST(NULL AS DOUBLE)"
            order = f"ORDER BY md5({literal(f'{random_seed}:')} || id), id"
        candidate = "drop_reason IS NULL"
        self.con.execute(
            "CREATE OR REPLACE TEMP TABLE ranked AS WITH s AS (SELECT id, domain, source, "
            f"n_tokens, drop_reason, {score} AS combined_score FROM base) SELECT *, "
            f"CASE WHEN {candidate} THEN row_number() OVER (PARTITION BY domain, {candidate} "
            f"{order}) END AS domain_rank, "
            f"CASE WHEN {candidate} THEN row_number() OVER (PARTITION BY {candidate} {order}) "
            "END AS global_rank FROM s")

    def cut(self, cut: Cut) -> Selection:
        """Apply a quota to ``ranked``: create ``outcomes`` (outcome NULL = kept) and return
        the kept rows in rank order (domain, then rank)."""
        warnings: list[str] = []
        quotas = define_outcomes(self.con, cut, warnings)
        kept = self.con.sql(
            "SELECT id, domain, n_tokens, combined_score, domain_rank AS selection_rank FROM "
            "outcomes WHERE outcome IS NULL ORDER BY domain, domain_rank").arrow()
        if isinstance(kept, pa.RecordBatchReader):
            kept = kept.read_all()
        return Selection(kept, quotas, warnings)

    def select(self, weights: Mapping[str, float] | None, cut: Cut, *,
               random_seed: int | None = None) -> Selection:
        self.rank(weights, random_seed=random_seed)
        return self.cut(cut)

    def varying_columns(self) -> list[str]:
        """Columns whose normalized values are not all equal or missing (they cannot rank)."""
        if not self.columns:
            return []
        spans = ", ".join(f"max(norm_{i}) > min(norm_{i})" for i in range(len(self.columns)))
        [row] = self.con.sql(f"SELECT {spans} FROM base").fetchall()
        return [c for c, varies in zip(self.columns, row, strict=True) if varies]

    def domain_tokens(self) -> dict[str, int]:
        """Tokens of the hard-filter survivors per domain: what budgets are shares of."""
        rows = self.con.sql("SELECT domain, sum(n_tokens) FROM base WHERE drop_reason IS NULL "
                            "GROUP BY domain ORDER BY domain").fetchall()
        return {d: int(n) for d, n in rows}
