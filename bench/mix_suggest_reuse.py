"""`metamix mix suggest` twice on a RegMix runs table: the second call reuses the first's fit.

The first call chooses the surrogate by K-fold and fits the GP (L-BFGS); it keeps both in
``<runs folder>/.metamix/``. The second call on the same table, and a third on the table
grown by ``--grow`` runs (a BO loop's next step), condition the GP on the stored
hyper-parameters instead. Each call is a fresh `metamix` process, as a user runs it (torch
and BoTorch imports included). Also times `--help` of every `mix` command (best of 3).

    .venv/bin/python bench/mix_suggest_reuse.py [--runs 460] [--grow 4] [--pool 0]

Rows come from RegMix's 512 1M training runs (../shared/benchmarks/regmix, read in place),
target the Pile-CC validation loss; the table is written to a temp folder.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from regmix_data import TARGET, load_split, require_data  # noqa: E402

from metamix.mixtures.mix.runs_table import write_runs_table  # noqa: E402

METAMIX = [sys.executable, "-m", "metamix.cli"]
HELP_COMMANDS = ("fit", "suggest", "optimize", "run")


def write_table(path: Path, n: int, start: int = 0) -> tuple[Path, list[str]]:
    """The first ``n`` RegMix 1M training runs (from ``start``) as a runs table."""
    data = load_split("train_1m")
    w = data["weights"][start:start + n]
    w = w / w.sum(axis=1, keepdims=True)
    y = data["losses"][start:start + n, data["loss_columns"].index(TARGET)]
    write_runs_table(path, data["domains"], w, losses={"loss_pile_cc": y})
    return path, data["domains"]


def timed(argv: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stderr[-3000:]}")
    return seconds, proc.stdout + proc.stderr


def suggest_calls(folder: Path, n_runs: int, grow: int, pool: int,
                  ) -> tuple[dict[str, float], str]:
    """Seconds of the first, second (same table) and grown-table `mix suggest` calls, and
    the first call's ``surrogate:`` line."""
    runs, _ = write_table(folder / "runs.csv", n_runs)
    extra: list[str] = []
    if pool:
        pool_path, _ = write_table(folder / "pool.csv", pool, start=n_runs + grow)
        extra = ["--pool", str(pool_path)]
    argv = [*METAMIX, "mix", "suggest", "--runs", str(runs), "--n", "1", *extra]
    out: dict[str, float] = {}
    out["first"], first_text = timed(argv)
    out["second"], second_text = timed(argv)
    if "reusing the fit" not in second_text:
        raise SystemExit(f"the second call did not reuse the fit:\n{second_text[-2000:]}")
    if grow:
        write_table(runs, n_runs + grow)
        out["grown"], grown_text = timed(argv)
        if "reusing the fit" not in grown_text:
            raise SystemExit(f"the grown-table call did not reuse the fit:\n{grown_text[-2000:]}")
    return out, next((line for line in first_text.splitlines()
                      if line.startswith("surrogate:")), "surrogate: ?")


def help_seconds(repeats: int = 3) -> dict[str, float]:
    return {c: min(timed([*METAMIX, "mix", c, "--help"])[0] for _ in range(repeats))
            for c in HELP_COMMANDS}


def main() -> None:
    require_data()
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=460)
    ap.add_argument("--grow", type=int, default=4)
    ap.add_argument("--pool", type=int, default=0, help="suggest from this many other runs")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        calls, surrogate = suggest_calls(Path(tmp), args.runs, args.grow, args.pool)
    print(f"mix suggest on {args.runs} RegMix runs (17 domains), each call a fresh process; "
          f"{surrogate}")
    print(f"  first call (K-fold choice + GP fit): {calls['first']:7.1f} s")
    print(f"  second call, same table (reused):    {calls['second']:7.1f} s   "
          f"ratio {calls['first'] / calls['second']:.1f}x")
    if "grown" in calls:
        print(f"  table grown by {args.grow} runs (reused):   {calls['grown']:7.1f} s   "
              f"ratio {calls['first'] / calls['grown']:.1f}x")
    helps = help_seconds()
    print("  --help: " + ", ".join(f"mix {c} {s:.2f} s" for c, s in helps.items())
          + f" (max {max(helps.values()):.2f} s)")


if __name__ == "__main__":
    main()
