"""CPU of ``metamix select`` against the same selection written as plain DuckDB SQL (goal:
metamix <= 1.5x the SQL), and the start-up cost of ``metamix --help`` (goal: <= 1 s CPU,
<= 150 MB RSS).

Both sides run as fresh processes on the same scored shards, interleaved (metamix, SQL,
metamix, SQL, ...), and each process is charged its user + sys CPU, DuckDB's threads
included (``RUSAGE_CHILDREN``); the spread over the repeats is printed with the medians.

The SQL reference is what a DuckDB user would write for the config's ``select:`` section:
one connection with the same settings, the engine's normalization and combined-score
expressions (so the doubles are bit-identical), row_number ranking, the token-budget cut
as a recursive CTE walking each domain in rank order (first fit: a document that would
overflow its domain's budget is skipped), and ``COPY ... PARTITION_BY (domain)`` to
Parquet. It writes no summary; metamix also writes ``selection_summary.json`` (counts and
per-domain score distributions before/after). Before timing, the two selections are
compared row by row (domain, id, rank, combined score, tokens, text) and must be equal.

    .venv/bin/python bench/select_speed.py [--config configs/demo.yaml] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from metamix.config import load_config  # noqa: E402
from metamix.pipeline.selection.config import resolve_weights  # noqa: E402
from metamix.pipeline.selection.engine import double, ident, literal  # noqa: E402
from metamix.pipeline.selection.quota import domain_budgets  # noqa: E402


def reference_sql(paths: list[Path], weights: dict[str, float], normalization: str,
                  hard_filters: list[str], cut: object, budgets: dict[str, int] | None,
                  out_dir: Path) -> str:
    """The selection as one DuckDB script (see the module docstring)."""
    source = f"read_parquet([{', '.join(literal(str(p)) for p in paths)}], union_by_name = true)"
    cols = list(weights)
    reasons = " ".join(f"WHEN {ident(f + '_drop_reason')} IS NOT NULL THEN "
                       f"{literal(f + ':')} || {ident(f + '_drop_reason')}" for f in hard_filters)
    drop = f"CASE {reasons} END" if hard_filters else "CAST(NULL AS VARCHAR)"
    raw = "".join(f", CASE WHEN isfinite(CAST({ident(c)} AS DOUBLE)) THEN CAST({ident(c)} AS "
                  f"DOUBLE) END AS raw_{i}" for i, c in enumerate(cols))
    bounds = ", ".join(f"min(raw_{i}) AS lo_{i}, max(raw_{i}) AS hi_{i}" for i in range(len(cols)))
    norms = []
    for i in range(len(cols)):
        norm = (f"CASE WHEN hi_{i} > lo_{i} THEN 5.0 * (raw_{i} - lo_{i}) / (hi_{i} - lo_{i}) "
                "ELSE 0.0 END" if normalization == "minmax" else
                f"5.0 * percent_rank() OVER (PARTITION BY raw_{i} IS NULL ORDER BY raw_{i})")
        norms.append(f", CASE WHEN raw_{i} IS NULL THEN NULL ELSE {norm} END AS norm_{i}")
    score = " + ".join(f"{double(w)} * coalesce(norm_{cols.index(c)}, "
                       f"{'0.0' if w >= 0 else '5.0'})" for c, w in weights.items())
    order = "ORDER BY combined_score DESC, id"
    script = [
        f"CREATE TEMP TABLE raw_scores AS SELECT id, domain, n_tokens, {drop} AS drop_reason"
        f"{raw} FROM {source}",
        f"CREATE TEMP TABLE ranked AS WITH bounds AS (SELECT {bounds} FROM raw_scores), "
        f"s AS (SELECT id, domain, n_tokens, drop_reason, CAST({score} AS DOUBLE) AS "
        f"combined_score FROM (SELECT id, domain, n_tokens, drop_reason{''.join(norms)} FROM "
        f"raw_scores, bounds)) SELECT *, CASE WHEN drop_reason IS NULL THEN row_number() OVER "
        f"(PARTITION BY domain, drop_reason IS NULL {order}) END AS domain_rank, CASE WHEN "
        f"drop_reason IS NULL THEN row_number() OVER (PARTITION BY drop_reason IS NULL {order})"
        " END AS global_rank FROM s",
    ]
    if budgets is not None:
        values = ", ".join(f"({literal(d)}, {b})" for d, b in sorted(budgets.items()))
        script.append(
            "CREATE TEMP TABLE kept AS WITH RECURSIVE cand AS (SELECT domain, domain_rank, "
            "n_tokens FROM ranked WHERE domain_rank IS NOT NULL), "
            f"budgets(domain, budget) AS (VALUES {values}), "
            "fill(domain, domain_rank, remaining, kept) AS ("
            "SELECT domain, 0::BIGINT, budget::BIGINT, false FROM budgets UNION ALL "
            "SELECT f.domain, c.domain_rank, CASE WHEN c.n_tokens <= f.remaining THEN "
            "f.remaining - c.n_tokens ELSE f.remaining END, c.n_tokens <= f.remaining "
            "FROM fill f JOIN cand c ON c.domain = f.domain AND c.domain_rank = "
            "f.domain_rank + 1) "
            "SELECT r.id, r.domain, r.combined_score, r.domain_rank AS selection_rank FROM "
            "ranked r JOIN fill f ON r.domain = f.domain AND r.domain_rank = f.domain_rank "
            "WHERE f.kept")
    else:
        rank = "domain_rank" if cut.per_domain else "global_rank"  # type: ignore[attr-defined]
        group = "PARTITION BY domain" if cut.per_domain else ""  # type: ignore[attr-defined]
        script.append(
            "CREATE TEMP TABLE kept AS SELECT id, domain, combined_score, domain_rank AS "
            f"selection_rank FROM (SELECT *, ceil(round({cut.fraction} * "  # type: ignore
            f"count(*) FILTER (drop_reason IS NULL) OVER ({group}), 6)) AS quota FROM ranked) "
            f"WHERE drop_reason IS NULL AND {rank} <= quota")
    script.append(
        f"COPY (SELECT s.*, k.combined_score, k.selection_rank FROM {source} AS s JOIN kept "
        "AS k ON s.id = k.id ORDER BY k.domain, k.combined_score DESC, s.id) TO "
        f"{literal(str(out_dir))} (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (domain))")
    return ";\n".join(script) + ";\n"


SQL_RUNNER = """
import sys, duckdb
con = duckdb.connect(config={"memory_limit": sys.argv[2], "threads": int(sys.argv[3]),
                             "preserve_insertion_order": False})
con.execute(open(sys.argv[1]).read())
"""


def timed(cmd: list[str]) -> tuple[float, float]:
    """(CPU seconds of the child and its threads, wall seconds)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime), wall


HELP_PROBE = """
import os, sys
pid = os.posix_spawn(sys.executable, [sys.executable, "-m", "metamix", "--help"], os.environ,
                     file_actions=[(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)])
_, status, usage = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime, usage.ru_maxrss)
"""


def help_cost(repeats: int) -> tuple[list[float], list[float]]:
    """(CPU seconds, peak RSS in MB) of ``metamix --help``, one fresh process each, started
    by a small launcher: a child's peak RSS starts at its parent's, and this process is big."""
    cpu, rss = [], []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", HELP_PROBE], cwd=REPO, check=True,
                             capture_output=True, text=True).stdout.split()
        if int(out[0]):
            raise SystemExit("metamix --help failed")
        cpu.append(float(out[1]))
        rss.append(int(out[2]) / 1024)
    return cpu, rss


def selected_rows(con: object, pattern: str, hive: bool) -> list[tuple]:
    return con.sql(  # type: ignore[attr-defined]
        f"SELECT domain, id, selection_rank, combined_score, n_tokens, md5(text) FROM "
        f"read_parquet('{pattern}', hive_partitioning = {str(hive).lower()}) "
        "ORDER BY domain, selection_rank").fetchall()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/demo.yaml")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    cfg = load_config(REPO / args.config)
    if cfg.select is None:
        raise SystemExit(f"{args.config}: no select: section")
    scored = sorted((cfg.run_dir / "scored").glob("part-*.parquet"))
    if not scored:
        raise SystemExit(f"no scored shards in {cfg.run_dir / 'scored'}: run metamix score")
    weights, normalization, _ = resolve_weights(cfg.select)
    cut = cfg.select.cut()
    work = Path(tempfile.mkdtemp(prefix="select-speed-"))
    try:
        run_dir = work / "out" / cfg.run
        (run_dir / "scored").mkdir(parents=True)
        paths = []
        for shard in scored:
            paths.append(run_dir / "scored" / shard.name)
            shutil.copyfile(shard, paths[-1])
        budgets = None
        if cut.mode == "token_budget":
            import duckdb

            available = dict(duckdb.sql(
                f"SELECT domain, sum(n_tokens) FROM read_parquet({[str(p) for p in paths]}) "
                "GROUP BY domain").fetchall())
            budgets = domain_budgets(cut, {d: int(n) for d, n in available.items()}, [])
        sql_out = work / "sql_selected"
        script = work / "select.sql"
        script.write_text(reference_sql(paths, weights, normalization,
                                        list(cfg.select.hard_filters), cut, budgets, sql_out))
        threads = cfg.select.duckdb_threads or min(os.cpu_count() or 1, 8)
        sql_cmd = [sys.executable, "-c", SQL_RUNNER, str(script), cfg.select.duckdb_memory_limit,
                   str(threads)]
        ours_cmd = [sys.executable, "-m", "metamix", "select", "--config", args.config,
                    "--set", f"out_dir={work / 'out'}", "--set", "progress=false"]

        ours, theirs = [], []
        for i in range(args.repeats):
            shutil.rmtree(sql_out, ignore_errors=True)
            ours.append(timed(ours_cmd))
            theirs.append(timed(sql_cmd))
            if i == 0:
                import duckdb

                con = duckdb.connect()
                mine = selected_rows(con, str(run_dir / "selected" / "*.parquet"), False)
                ref = selected_rows(con, str(sql_out / "*" / "*.parquet"), True)
                if mine != ref:
                    raise SystemExit(f"selections differ: metamix {len(mine)} rows, "
                                     f"SQL {len(ref)} rows")
                summary = json.loads((run_dir / "selection_summary.json").read_text())
                print(f"{len(scored)} scored shards, {summary['totals']['docs_before']:,} docs,"
                      f" {len(weights)} weighted scores, mode {cut.mode}; selections identical "
                      f"({len(mine):,} rows)")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def line(name: str, runs: list[tuple[float, float]]) -> float:
        cpu = [r[0] for r in runs]
        med = statistics.median(cpu)
        print(f"{name:16}{med:>10.2f}{min(cpu):>8.2f}{max(cpu):>8.2f}"
              f"{statistics.median(r[1] for r in runs):>10.2f}")
        return med

    print(f"\n{'':16}{'cpu med':>10}{'min':>8}{'max':>8}{'wall med':>10}   ({args.repeats} "
          "interleaved runs each, fresh processes)")
    ours_med = line("metamix select", ours)
    sql_med = line("DuckDB SQL", theirs)
    ratios = sorted(o[0] / t[0] for o, t in zip(ours, theirs, strict=True))
    print(f"\nmetamix / SQL cpu: {ours_med / sql_med:.2f}x (per-pair ratios "
          f"{ratios[0]:.2f}-{ratios[-1]:.2f}; goal <= 1.5x)")
    cpu, rss = help_cost(args.repeats)
    print(f"metamix --help: {statistics.median(cpu):.2f} s CPU (max {max(cpu):.2f}), "
          f"{max(rss):.0f} MB peak RSS (goal <= 1 s, <= 150 MB)")


if __name__ == "__main__":
    main()
