"""Kill a reduced score → metarater → mix → select → export chain at every commit point.

1. A clean run takes the chain one step command at a time (``metamix score``, ``metarater``,
   ``mix run``, ``select``, ``export --format megatron`` and ``jsonl``), counting each
   step's commit points (just before and just after each rename of an atomic write, in
   every process) and keeping a copy of ``out/`` as it stands before each step. Its output
   files' hashes are the reference; a warm-up run of the whole chain as a user types it
   (``metamix run`` + the exports) must end with the same files.
2. For each commit point of each step: the copy from before that step is restored, the
   step's command is SIGKILLed (its whole process group) at that point, named by its file
   and occurrence (``METAMIX_FAULT_KILL_ON``: which file is the n-th point varies with the
   workers' timing), then the chain is resumed as a user would (``metamix run``, then the
   exports). It must end with exactly the reference files (outside ``logs/``) and no
   temporary file (``.*.tmp-<pid>``, ``*-spill-<pid>``) anywhere under ``out/``.

   Starting a later step's points from the copy is sound: at any kill point of that step
   the run folder holds the earlier steps' outputs, which are the same files whether the
   command that wrote them also ran this step or not (step 1 checks the two chains agree).

    nice -n 10 .venv/bin/python bench/fault_injection.py [--jobs 2] [--every 1]
        [--steps select,export-jsonl] [--minutes 60] [--keep /tmp/fi]

Prints the points tried, resumed identically, failed and with temporary files left, and
the wall time; with ``--minutes`` it starts no trial after that long (and says how many of
the points it tried).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

REPO = Path(__file__).resolve().parent.parent
#: Domains of the bundled corpus the reduced chain keeps, and documents of each.
DOMAINS = ("books", "code", "technical", "web")
DOCS_PER_DOMAIN = 40


def make_inputs(root: Path) -> None:
    """``DOCS_PER_DOMAIN`` documents of each of ``DOMAINS``, one shard per domain."""
    (root / "data").mkdir(parents=True)
    for domain in DOMAINS:
        shard = sorted((REPO / "data" / "sample" / "train").glob(f"{domain}-*.parquet"))[0]
        table = pq.read_table(shard).slice(0, DOCS_PER_DOMAIN)
        pq.write_table(pa.Table.from_batches(table.to_batches()), root / "data" /
                       f"{domain}.parquet")


CONFIG = {
    "run": "fi", "out_dir": "out", "seed": 0, "workers": 2, "progress": False,
    "input": {"paths": ["../inputs/data/*.parquet"]},
    "validation": {"paths": [str(REPO / "data" / "sample" / "validation" / "*.parquet")]},
    "tokenizer": {"vocab_size": 600, "sample_docs": 160},
    "score": {"scorers": [{"name": "redpajama"}, {"name": "c4"}]},
    "metarater": {
        "targets": [{"name": "manuals", "kind": "text", "input": {
            "paths": [str(REPO / "data" / "targets" / "gnu_manuals.parquet")]}},
                    {"name": "validation", "kind": "validation", "weight": 0}],
        "k": 6, "folds": 2, "random_draws": 2, "baselines": False, "share_tolerance": 0.1,
        "n_search_samples": 1000, "top_k": 6, "fraction": 0.3},
    "mix": {"n_runs": 6, "bo_rounds": 1, "bo_batch": 1, "proxy_tokens": 10000, "folds": 2,
            "n_candidates": 1000, "surrogates": ["linear", "loglinear"]},
    "select": {"weights_file": "out/fi/metarater/weights.json", "mode": "token_budget",
               "mixture_file": "out/fi/mixture/weights.json"},
}

#: The chain's step commands, in order (``metamix run`` takes the first four).
STEPS: dict[str, list[str]] = {
    "score": ["score"], "metarater": ["metarater"], "mix": ["mix", "run"],
    "select": ["select"], "export-megatron": ["export", "--format", "megatron"],
    "export-jsonl": ["export", "--format", "jsonl", "--shard-docs", "25"]}
#: What a user types to finish the chain (and to resume it).
CHAIN = [["run"], STEPS["export-megatron"], STEPS["export-jsonl"]]


@dataclass(frozen=True)
class Point:
    step: str
    nth: int        # this point's earlier occurrences in the step's log
    line: str       # ``before|after<tab><dest>`` as the clean run logged it


def metamix(trial: Path, args: list[str], counter: Path | None = None,
            kill_on: str | None = None) -> int:
    env = {**os.environ}
    if counter is not None:
        env["METAMIX_FAULT_COUNTER"] = str(counter)
    if kill_on is not None:
        env["METAMIX_FAULT_KILL_ON"] = kill_on
    proc = subprocess.run([sys.executable, "-m", "metamix.cli", *args, "-c", "config.yaml"],
                          cwd=trial, env=env, start_new_session=True,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode not in (0, -9):
        sys.stderr.write(f"metamix {' '.join(args)} in {trial}: exit {proc.returncode}\n"
                         f"{proc.stderr[-3000:]}")
    return proc.returncode


def run_chain(trial: Path) -> bool:
    return all(metamix(trial, args) == 0 for args in CHAIN)


def digests(run_dir: Path) -> dict[str, str]:
    return {p.relative_to(run_dir).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(run_dir.rglob("*")) if p.is_file()
            and p.relative_to(run_dir).parts[0] not in ("logs", ".lock")}


def leftovers(out: Path) -> list[str]:
    return [p.relative_to(out).as_posix() for p in out.rglob(".*")
            if ".tmp-" in p.name or "-spill-" in p.name]


def new_trial(base: Path, name: str, snapshot: Path | None) -> Path:
    work = base / name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    (work / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    if snapshot is not None:
        shutil.copytree(snapshot, work / "out", symlinks=True)
    return work


def clean_run(base: Path) -> tuple[list[Point], dict[str, str]]:
    """Run the chain step by step; return its points and output digests, keeping
    ``base/snapshots/<step>`` (``out/`` before that step)."""
    clean = new_trial(base, "clean", None)
    points: list[Point] = []
    for step, args in STEPS.items():
        if (clean / "out").exists():
            shutil.copytree(clean / "out", base / "snapshots" / step, symlinks=True)
        log = base / "logs" / f"{step}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        if metamix(clean, args, counter=log) != 0:
            raise SystemExit(f"the clean run's step {step} failed")
        seen: dict[str, int] = {}
        for line in log.read_text().splitlines() if log.exists() else []:
            points.append(Point(step, seen.get(line, 0), line))
            seen[line] = seen.get(line, 0) + 1
    return points, digests(clean / "out" / "fi")


def trial(base: Path, index: int, point: Point, reference: dict[str, str]) -> list[str]:
    """Kill the step at the point, resume the chain, compare: what went wrong (nothing when
    the resume is exact). A leftover temporary file is reported as ``leftover: ...``."""
    snapshot = base / "snapshots" / point.step
    work = new_trial(base, f"k{index:04d}", snapshot if snapshot.exists() else None)
    target = point.line.replace(str(base / "clean"), str(work))
    try:
        code = metamix(work, STEPS[point.step], work / "points.log",
                       f"{point.nth}\t{target}")
        if code != -9:
            return [f"the step was not killed (exit {code})"]
        if not run_chain(work):
            return ["the resumed chain failed"]
        problems = []
        if left := leftovers(work / "out"):
            problems.append(f"leftover: {len(left)} temporary files, e.g. {left[:3]}")
        got = digests(work / "out" / "fi")
        if got != reference:
            diff = sorted({d[0] for d in set(got.items()) ^ set(reference.items())})
            problems.append(f"outputs differ from the clean run: {diff[:5]}")
        return problems
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2, help="trials at once")
    ap.add_argument("--every", type=int, default=1, help="test every n-th point (1 = all)")
    ap.add_argument("--steps", default=",".join(STEPS),
                    help=f"only these steps' points (comma-separated; {', '.join(STEPS)})")
    ap.add_argument("--minutes", type=float, default=None,
                    help="start no trial after this many minutes")
    ap.add_argument("--keep", type=Path, help="work here instead of a temporary folder")
    args = ap.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="metamix-fi-"))
    base.mkdir(parents=True, exist_ok=True)
    for old in ("snapshots", "logs"):
        shutil.rmtree(base / old, ignore_errors=True)
    # trials live in base/<name>/ and read ../inputs, so every trial has the same layout
    if not (base / "inputs").exists():
        make_inputs(base / "inputs")
    started = time.monotonic()
    warm = new_trial(base, "chain", None)
    if not run_chain(warm):              # also warms caches (numba kernels)
        print("the chain failed")
        return 1
    chain_files = digests(warm / "out" / "fi")
    shutil.rmtree(warm)
    points, reference = clean_run(base)
    per_step = {s: sum(p.step == s for p in points) for s in STEPS}
    print(f"clean run: {len(points)} commit points ("
          + ", ".join(f"{s} {n}" for s, n in per_step.items())
          + f"), {len(reference)} output files, {time.monotonic() - started:.0f}s for the "
          "chain and the stepwise clean run")
    if chain_files != reference:
        diff = sorted({d[0] for d in set(chain_files.items()) ^ set(reference.items())})
        print(f"the chain and the stepwise run differ: {diff[:5]}")
        return 1
    wanted = set(args.steps.split(","))
    chosen = [(i, p) for i, p in enumerate(points) if p.step in wanted][::args.every]
    deadline = None if args.minutes is None else started + args.minutes * 60
    failures: list[str] = []
    tried = identical = with_leftovers = 0

    def one(item: tuple[int, Point]) -> list[str] | None:
        if deadline is not None and time.monotonic() > deadline:
            return None   # not tried
        return trial(base, *item, reference)

    with ThreadPoolExecutor(args.jobs) as pool:
        for (k, point), problems in zip(chosen, pool.map(one, chosen), strict=True):
            if problems is None:
                continue
            tried += 1
            identical += not any(not p.startswith("leftover") for p in problems)
            with_leftovers += any(p.startswith("leftover") for p in problems)
            status = "ok" if not problems else "FAIL"
            print(f"[{status}] {point.step} point {k:4d} (#{point.nth}): "
                  f"{point.line.replace(str(base / 'clean') + '/', '')}", flush=True)
            failures += [f"{point.step} point {k} ({point.line}): {p}" for p in problems]
    print(f"\npoints tried: {tried} of {len(chosen)} chosen ({len(points)} in the chain); "
          f"resumed identically: {identical}; with temporary files left: {with_leftovers}; "
          f"wall {time.monotonic() - started:.0f}s")
    for problem in failures:
        print("  " + problem)
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return 1 if failures or tried < len(chosen) else 0


if __name__ == "__main__":
    sys.exit(main())
