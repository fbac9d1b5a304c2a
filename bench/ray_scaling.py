"""docs/s of ``metamix score`` (heuristic scorers only) under the local executor and under
Ray on the same cores: one Ray node with all of them, and two nodes joined on 127.0.0.1
splitting them (goal: Ray's docs/s >= 0.85x the local executor's, i.e. overhead <= 15%).

Every run is the whole command (a fresh run folder, so nothing resumes; the tokenizer is
trained once before timing, as on every run after a corpus's first): Python start,
connecting to the cluster, the stages, the summary. Two measures:

- wall clock: docs / seconds, what the issue asks; on a machine shared with other work it
  also measures how much of the contended cores each setup manages to grab (more runnable
  processes, a bigger share), so it can favour either side;
- CPU: docs / CPU-seconds of everything the run used: the command and its pool workers, and
  for Ray every process of the cluster it ran on (raylets, GCS, object stores, workers),
  sampled from /proc while the command runs. This is the overhead Ray adds at equal cores,
  whatever else the machine does.

Runs are interleaved (local, ray 1 node, ray 2 nodes, again...) so outside load falls on
all three alike; medians and the spread over the repeats are printed. Both clusters are up
for the whole benchmark, started and stopped by this script (``tests/ray_cluster.py``).

With ``--copies K`` the corpus is K copies of the bundled one (new ids, so nothing is a
duplicate): Ray's fixed costs (connecting, starting a job's workers) shrink against the
work.

    .venv/bin/python bench/ray_scaling.py [--repeats 3] [--cores 2] [--copies 1]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from score_speed import become_subreaper  # noqa: E402 - this folder is sys.path[0]

from tests.ray_cluster import LocalRayCluster  # noqa: E402

TRAIN = REPO / "data" / "sample" / "train"
HEURISTICS = ["redpajama", "gopher_quality", "gopher_repetition", "c4", "fineweb"]
GOAL_RATIO = 0.85


def corpus(folder: Path, copies: int) -> Path:
    """The bundled training shards, or ``copies`` copies of them with distinct ids."""
    if copies <= 1:
        return TRAIN
    out = folder / "corpus"
    out.mkdir()
    for k in range(copies):
        for f in sorted(TRAIN.glob("*.parquet")):
            table = pq.read_table(f)
            ids = pc.binary_join_element_wise(table.column("id"), pa.scalar(f"~{k}"), "")
            table = table.set_column(table.schema.get_field_index("id"), "id", ids)
            pq.write_table(table, out / f"{f.stem}-c{k}.parquet")
    return out


def write_config(folder: Path, cores: int, data: Path) -> Path:
    path = folder / "bench.yaml"
    path.write_text(yaml.safe_dump({
        "run": "warmup", "out_dir": str(folder / "out"), "workers": cores, "progress": False,
        "input": {"paths": [str(data / "*.parquet")]},
        "score": {"scorers": [{"name": n} for n in HEURISTICS]}}))
    return path


TICK = os.sysconf("SC_CLK_TCK")


def _proc_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, own CPU ticks) of every process now."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited while we looked
        table[int(stat.parent.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    return table


class TreeCPU:
    """CPU seconds used by the process trees under ``roots`` (a Ray cluster's nodes) while
    running: sampled from /proc every 0.2 s, per process, from its value at ``start`` (0 for
    processes born later). Ray's raylet does not wait() for its workers, so their CPU never
    reaches a parent's cumulative counters: they must be read while alive. A worker's last
    <0.2 s before it exits is missed."""

    def __init__(self, roots: set[int]) -> None:
        self.roots = roots
        self.base: dict[int, int] = {}
        self.last: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _tree(self) -> dict[int, int]:
        table = _proc_table()
        inside: dict[int, int] = {}
        for pid, (_, ticks) in table.items():
            p, seen = pid, 0
            while p > 1 and seen < 64:
                if p in self.roots:
                    inside[pid] = ticks
                    break
                p, seen = table.get(p, (0, 0))[0], seen + 1
        return inside

    def __enter__(self) -> TreeCPU:
        self.base = self._tree()
        self.last = dict(self.base)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.last.update(self._tree())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.last.update(self._tree())

    @property
    def seconds(self) -> float:
        return sum(t - self.base.get(pid, 0) for pid, t in self.last.items()) / TICK


def _own_children() -> set[int]:
    me = os.getpid()
    return {pid for pid, (ppid, _) in _proc_table().items() if ppid == me}


def reap_orphans(keep: set[int]) -> None:
    """Wait for every child of this process not in ``keep`` (the clusters' daemons are
    children too and stay up)."""
    while True:
        orphans = _own_children() - keep
        if not orphans:
            return
        for pid in orphans:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_score(config: Path, run: str, *sets: str,
                cluster: LocalRayCluster | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one ``metamix score``."""
    args = [sys.executable, "-m", "metamix", "score", "-c", str(config), "--set", f"run={run}"]
    for s in sets:
        args += ["--set", s]
    keep = _own_children()
    cpu0 = children_cpu()
    with TreeCPU({p.pid for p in cluster.nodes} if cluster else set()) as tree:
        start = time.perf_counter()
        done = subprocess.run(args, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        reap_orphans(keep)
    cpu = children_cpu() - cpu0 + tree.seconds
    if done.returncode != 0:
        raise SystemExit(f"{run} failed:\n{done.stdout}\n{done.stderr}")
    return seconds, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cores", type=int, default=2, help="cores every setup gets")
    parser.add_argument("--copies", type=int, default=1, help="copies of the corpus")
    args = parser.parse_args()
    if not sorted(TRAIN.glob("*.parquet")):
        raise SystemExit(f"no corpus at {TRAIN}")
    become_subreaper()

    with tempfile.TemporaryDirectory(prefix="ray-scaling-") as tmp:
        data = corpus(Path(tmp), args.copies)
        files = sorted(data.glob("*.parquet"))
        docs = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        config = write_config(Path(tmp), args.cores, data)
        print(f"corpus: {docs:,} docs in {len(files)} shards; {args.cores} cores per setup; "
              "training the tokenizer (untimed)...", flush=True)
        timed_score(config, "warmup")
        one = LocalRayCluster(cpus_per_node=args.cores).start(workers=0)
        two = LocalRayCluster(cpus_per_node=max(1, args.cores // 2)).start(workers=1)
        setups: dict[str, tuple[list[str], LocalRayCluster | None]] = {
            "local executor": ([], None),
            "ray, 1 node": (["executor=ray", f"ray.address={one.address}"], one),
            "ray, 2 nodes": (["executor=ray", f"ray.address={two.address}"], two),
        }
        wall: dict[str, list[float]] = {name: [] for name in setups}
        cpu: dict[str, list[float]] = {name: [] for name in setups}
        try:
            for rep in range(args.repeats):
                for i, (name, (sets, cluster)) in enumerate(setups.items()):
                    w, c = timed_score(config, f"r{rep}-{i}", *sets, cluster=cluster)
                    wall[name].append(w)
                    cpu[name].append(c)
                    print(f"  repeat {rep + 1}: {name:<15} {w:6.1f} s wall {docs / w:6.0f} "
                          f"docs/s   {c:6.1f} s CPU {docs / c:6.0f} docs/CPU-s", flush=True)
        finally:
            one.stop()
            two.stop()

    for measure, values in (("wall clock", wall), ("CPU", cpu)):
        local = statistics.median(values["local executor"])
        print(f"\n{measure}: {'setup':<16}{'median s':>9}{'docs/s':>9}{'spread s':>14}"
              f"{'ray/local docs/s':>18}")
        for name, v in values.items():
            med = statistics.median(v)
            print(f"{'':<{len(measure) + 2}}{name:<16}{med:9.1f}{docs / med:9.0f}"
                  f"{min(v):7.1f}-{max(v):<6.1f}{local / med:12.2f}")
        for name in ("ray, 1 node", "ray, 2 nodes"):
            ratio = local / statistics.median(values[name])
            verdict = "meets" if ratio >= GOAL_RATIO else "MISSES"
            print(f"{measure}, {name}: docs/s ratio ray/local = {ratio:.2f} (overhead "
                  f"{1 - ratio:+.0%}); goal >= {GOAL_RATIO}: {verdict}")


if __name__ == "__main__":
    main()
