"""Kill a reduced score → metarater → mix → select → export chain at every commit point.

1. A clean run takes the chain one step command at a time (``metamix score``, ``metarater``,
   ``mix run``, ``select``, ``export --format megatron`` and ``jsonl``), counting each
   step's commit points (just before and just after each rename that publishes a file, in
   every process), keeping a copy of ``out/`` as it stands before each step and the hashes
   of the run folder's files after each. A warm-up run of the whole chain as a user types it
   (``metamix run`` + the exports) must end with the same files.
2. For each commit point of each step: the copy from before that step is restored, the
   step's command is SIGKILLed (its whole process group) at that point, named by its file
   and occurrence (``METAMIX_FAULT_KILL_ON``: which file is the n-th point varies with the
   workers' timing), and the chain is resumed up to that step as a user would (``metamix
   run --until <step>``, ``run``, ``export``). The run folder must then hold exactly the
   clean run's files after that step (outside ``logs/``) and no temporary file
   (``.*.tmp-<pid>``, ``*-spill-<pid>``) anywhere under ``out/``.

   Sound, and what makes every point affordable: at any kill point of a step the run folder
   holds the earlier steps' outputs, the same files whether the command that wrote them ran
   this step too or not (step 1 checks the two chains agree); and the later steps read only
   files, so a resume that ends with the clean files ends the chain like the clean run.

    nice -n 10 .venv/bin/python bench/fault_injection.py [--jobs 2] [--every 1]
        [--steps select,export-jsonl] [--minutes 60] [--keep /tmp/fi]

Trials run cheapest first (the last steps' points). Prints the points tried of those
chosen, resumed identically, with temporary files left, and the wall time; with
``--minutes`` it starts no trial after that long.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
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
#: Domains of the bundled corpus the reduced chain keeps, documents of each, and the
#: validation shards it keeps (each shard is a few commit points in every score stage).
DOMAINS = ("code", "technical", "web")
DOCS_PER_DOMAIN = 40
VALIDATION_SHARDS = 2


def make_inputs(root: Path) -> None:
    """``DOCS_PER_DOMAIN`` documents of each of ``DOMAINS``, one shard per domain, and the
    first ``VALIDATION_SHARDS`` shards of the bundled validation split."""
    (root / "data").mkdir(parents=True)
    (root / "validation").mkdir()
    for domain in DOMAINS:
        shard = sorted((REPO / "data" / "sample" / "train").glob(f"{domain}-*.parquet"))[0]
        table = pq.read_table(shard).slice(0, DOCS_PER_DOMAIN)
        pq.write_table(pa.Table.from_batches(table.to_batches()), root / "data" /
                       f"{domain}.parquet")
    for shard in sorted((REPO / "data" / "sample" / "validation").glob("*.parquet"))[
            :VALIDATION_SHARDS]:
        shutil.copy(shard, root / "validation" / shard.name)


CONFIG = {
    "run": "fi", "out_dir": "out", "seed": 0, "workers": 2, "progress": False,
    "input": {"paths": ["../inputs/data/*.parquet"]},
    "validation": {"paths": ["../inputs/validation/*.parquet"]},
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
#: What a user types to finish the chain.
CHAIN = [["run"], STEPS["export-megatron"], STEPS["export-jsonl"]]
#: What a user types to resume the chain up to each step (``run`` skips complete steps).
RESUME: dict[str, list[str]] = {
    "score": ["run", "--until", "score"], "metarater": ["run", "--until", "metarater"],
    "mix": ["run", "--until", "mix"], "select": ["run"],
    "export-megatron": STEPS["export-megatron"], "export-jsonl": STEPS["export-jsonl"]}
#: The Megatron data path names the export folder absolutely (for the training job), so
#: it is compared with the folder masked, and its hash in the export's manifest not at all.
DATA_PATH = "export/megatron/megatron_data_path.txt"


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


def digests(trial: Path) -> dict[str, str]:
    """sha256 of every file of the trial's run folder outside ``logs/`` and ``.lock``."""
    run_dir = trial / "out" / "fi"
    found = {}
    for p in sorted(run_dir.rglob("*")):
        rel = p.relative_to(run_dir).as_posix()
        if not p.is_file() or rel.split("/")[0] in ("logs", ".lock"):
            continue
        data = p.read_bytes()
        if rel == DATA_PATH:   # the folder that wrote it: this trial's, or the copy's
            data = re.sub(rb"\S*(/out/fi/export/)", rb"<trial>\1", data)
        elif rel == "_manifests/export-megatron.json":
            record = json.loads(data)
            record["files"].pop(Path(DATA_PATH).name, None)
            data = json.dumps(record, sort_keys=True).encode()
        found[rel] = hashlib.sha256(data).hexdigest()
    return found


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


def clean_run(base: Path) -> tuple[list[Point], dict[str, dict[str, str]]]:
    """Run the chain step by step; return its points and, per step, the digests of the run
    folder after it, keeping ``base/snapshots/<step>`` (``out/`` before that step)."""
    clean = new_trial(base, "clean", None)
    points: list[Point] = []
    after: dict[str, dict[str, str]] = {}
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
        after[step] = digests(clean)
    return points, after


def trial(base: Path, index: int, point: Point, reference: dict[str, str]) -> list[str]:
    """Kill the step at the point, resume the chain up to that step as a user would, and
    compare the run folder with the clean run's after that step (the later steps read only
    these files): what went wrong, nothing when the resume is exact. A temporary file left
    is reported as ``leftover: ...``."""
    snapshot = base / "snapshots" / point.step
    work = new_trial(base, f"k{index:04d}", snapshot if snapshot.exists() else None)
    target = point.line.replace(str(base / "clean"), str(work))
    try:
        code = metamix(work, STEPS[point.step], work / "points.log",
                       f"{point.nth}\t{target}")
        if code != -9:
            return [f"the step was not killed (exit {code})"]
        if metamix(work, RESUME[point.step]) != 0:
            return ["the resume failed"]
        problems = []
        if left := leftovers(work / "out"):
            problems.append(f"leftover: {len(left)} temporary files, e.g. {left[:3]}")
        got = digests(work)
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
    chain_files = digests(warm)
    shutil.rmtree(warm)
    points, after = clean_run(base)
    reference = after[list(STEPS)[-1]]
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
    # the cheapest trials (the last steps) first, so a time limit leaves the dear ones out
    chosen = sorted([(i, p) for i, p in enumerate(points) if p.step in wanted][::args.every],
                    key=lambda item: (-list(STEPS).index(item[1].step), item[0]))
    deadline = None if args.minutes is None else started + args.minutes * 60
    failures: list[str] = []
    tried = identical = with_leftovers = 0

    def one(item: tuple[int, Point]) -> list[str] | None:
        if deadline is not None and time.monotonic() > deadline:
            return None   # not tried
        return trial(base, *item, after[item[1].step])

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
