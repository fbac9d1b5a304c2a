"""Kill a small score → metarater → mix → select chain at every atomic-write commit point.

1. A clean run of ``metamix run`` counts the commit points (just before and just after each
   rename of an atomic write, in every process) and records every output file's hash.
2. For each point k: a fresh run is SIGKILLed (its whole process group) at point k, then the
   same command is run again to completion. The resumed run must end with exactly the clean
   run's files (outside ``logs/``) and no temporary file (``.*.tmp-<pid>``, ``*-spill-<pid>``)
   anywhere under ``out/``.

    .venv/bin/python bench/fault_injection.py [--jobs 2] [--every 1] [--keep /tmp/fi]

Prints the number of kill points covered and every point whose resume went wrong.
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
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

REPO = Path(__file__).resolve().parent.parent


def make_inputs(root: Path) -> None:
    """60 documents per domain of the bundled corpus, one shard per domain."""
    (root / "data").mkdir(parents=True)
    by_domain: dict[str, Path] = {}
    for shard in sorted((REPO / "data" / "sample" / "train").glob("*.parquet")):
        by_domain.setdefault(shard.name.rsplit("-", 1)[0], shard)
    for domain, shard in sorted(by_domain.items()):
        table = pq.read_table(shard).slice(0, 60)
        pq.write_table(pa.Table.from_batches(table.to_batches()), root / "data" /
                       f"{domain}.parquet")


CONFIG = {
    "run": "fi", "out_dir": "out", "seed": 0, "workers": 2, "progress": False,
    "input": {"paths": ["../inputs/data/*.parquet"]},
    "validation": {"paths": [str(REPO / "data" / "sample" / "validation" / "*.parquet")]},
    "tokenizer": {"vocab_size": 1000, "sample_docs": 400},
    "score": {"scorers": [{"name": "redpajama"}, {"name": "fineweb"}, {"name": "c4"}]},
    "metarater": {
        "targets": [{"name": "manuals", "kind": "text", "input": {
            "paths": [str(REPO / "data" / "targets" / "gnu_manuals.parquet")]}},
                    {"name": "validation", "kind": "validation", "weight": 0}],
        "k": 8, "folds": 2, "random_draws": 2, "baselines": False, "share_tolerance": 0.1,
        "n_search_samples": 2000, "top_k": 8, "fraction": 0.3},
    "mix": {"n_runs": 6, "bo_rounds": 1, "bo_batch": 2, "proxy_tokens": 20000, "folds": 2,
            "n_candidates": 2000, "surrogates": ["linear", "loglinear"]},
    "select": {"weights_file": "out/fi/metarater/weights.json", "mode": "token_budget",
               "mixture_file": "out/fi/mixture/weights.json"},
}


def run_chain(trial: Path, counter: Path | None = None, kill_at: int | None = None
              ) -> int:
    env = {**os.environ}
    if counter is not None:
        env["METAMIX_FAULT_COUNTER"] = str(counter)
    if kill_at is not None:
        env["METAMIX_FAULT_KILL_AT"] = str(kill_at)
    proc = subprocess.run([sys.executable, "-m", "metamix.cli", "run", "-c", "config.yaml"],
                          cwd=trial, env=env, start_new_session=True,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode not in (0, -9):
        sys.stderr.write(proc.stderr[-3000:])
    return proc.returncode


def digests(run_dir: Path) -> dict[str, str]:
    return {p.relative_to(run_dir).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(run_dir.rglob("*")) if p.is_file()
            and p.relative_to(run_dir).parts[0] not in ("logs", ".lock")}


def leftovers(out: Path) -> list[str]:
    return [p.relative_to(out).as_posix() for p in out.rglob(".*")
            if ".tmp-" in p.name or "-spill-" in p.name]


def trial(base: Path, k: int, reference: dict[str, str]) -> str | None:
    """Kill at point k, resume, compare; None when the resume is exact."""
    work = base / f"k{k:04d}"
    work.mkdir()
    (work / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    try:
        code = run_chain(work, work / "points.log", k)
        if code != -9:
            return f"point {k}: the run was not killed (exit {code})"
        if run_chain(work) != 0:
            return f"point {k}: the resumed run failed"
        left = leftovers(work / "out")
        if left:
            return f"point {k}: temporary files left after the resume: {left[:3]}"
        got = digests(work / "out" / "fi")
        if got != reference:
            diff = sorted(set(got.items()) ^ set(reference.items()))
            files = sorted({d[0] for d in diff})[:5]
            return f"point {k}: outputs differ from the clean run: {files}"
        return None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2, help="trials at once")
    ap.add_argument("--every", type=int, default=1, help="test every n-th point (1 = all)")
    ap.add_argument("--keep", type=Path, help="work here instead of a temporary folder")
    args = ap.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="metamix-fi-"))
    base.mkdir(parents=True, exist_ok=True)
    # trials live in base/k*/ and read ../inputs, so every trial has the same relative layout
    inputs = base / "inputs"
    if not inputs.exists():
        make_inputs(inputs)
    clean = base / "clean"
    shutil.rmtree(clean, ignore_errors=True)
    clean.mkdir()
    (clean / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    run_chain(clean)                      # warm caches (numba kernels) outside the count
    shutil.rmtree(clean / "out")
    started = time.monotonic()
    if run_chain(clean, clean / "points.log") != 0:
        print("the clean run failed")
        return 1
    points = (clean / "points.log").read_text().splitlines()
    reference = digests(clean / "out" / "fi")
    print(f"clean run: {len(points)} commit points ({len(points) // 2} atomic writes), "
          f"{len(reference)} output files, {time.monotonic() - started:.0f}s")
    chosen = list(range(0, len(points), args.every))
    failures = []
    with ThreadPoolExecutor(args.jobs) as pool:
        for k, problem in zip(chosen, pool.map(lambda k: trial(base, k, reference),
                                               chosen), strict=True):
            status = "ok" if problem is None else "FAIL"
            print(f"[{status}] kill at point {k:4d}: {points[k]}", flush=True)
            if problem:
                failures.append(problem)
    print(f"\nkill points covered: {len(chosen)} of {len(points)}; resumed identically: "
          f"{len(chosen) - len(failures)}; failures: {len(failures)}")
    for problem in failures:
        print("  " + problem)
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
