"""Peak memory of `metamix score` on the bundled corpus at 1× and 10× its size, and with
one huge document (``--huge-mb``, default 50 MB) among a few normal ones.

The corpus is replicated with fresh ids (so nothing is quarantined as a duplicate) into a
scratch directory; each size is scored in a subprocess with a fresh output directory while
this script samples the RSS of the whole process tree (parent + workers) every 50 ms.

    .venv/bin/python bench/score_memory.py [--factors 1 10] [--workers 2]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from metamix.scorers.registry import HEURISTIC_FAMILIES

REPO = Path(__file__).resolve().parent.parent


def replicate(src: Path, dst: Path, factor: int) -> tuple[int, int]:
    """Write ``factor`` copies of every shard with ids suffixed by the copy number."""
    dst.mkdir(parents=True, exist_ok=True)
    rows = nbytes = 0
    for shard in sorted(src.glob("*.parquet")):
        table = pq.read_table(shard)
        for k in range(factor):
            ids = pc.binary_join_element_wise(table.column("id"), pa.scalar(f"#r{k}"), "")
            copy = table.set_column(table.schema.get_field_index("id"), "id", ids)
            pq.write_table(copy, dst / f"{shard.stem}-r{k:02d}.parquet", compression="zstd")
            rows += copy.num_rows
            nbytes += pc.sum(pc.binary_length(copy.column("text"))).as_py()
    return rows, nbytes


def peak_tree_rss(cmd: list[str]) -> tuple[float, float, int]:
    """Run ``cmd``; return (peak summed RSS of its process tree in MiB, seconds, exit code)."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    root = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        total = 0
        try:
            procs = [root, *root.children(recursive=True)]
            for p in procs:
                with contextlib.suppress(psutil.Error):  # a worker may exit mid-poll
                    total += p.memory_info().rss
        except psutil.Error:
            pass
        peak = max(peak, total)
        time.sleep(0.05)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr.read().decode() if proc.stderr else "")
    return peak / 2**20, time.monotonic() - start, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--factors", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--source", type=Path, default=REPO / "data" / "sample" / "train")
    parser.add_argument("--scorers", nargs="+", default=list(HEURISTIC_FAMILIES),
                        help="scorer families to run (default: the heuristic set)")
    parser.add_argument("--huge-mb", type=int, nargs="*", default=[50],
                        help="also score one document of this many MB (0 or none: skip)")
    args = parser.parse_args()
    tokenizer = REPO / "out" / "demo" / "tokenizer.json"
    print(f"{'factor':>6} {'docs':>9} {'MB':>8} {'seconds':>8} {'docs/s':>8} {'peak RSS MiB':>13}")
    with tempfile.TemporaryDirectory(prefix="metamix-rss-") as scratch:
        for factor in args.factors:
            data = Path(scratch) / f"x{factor}"
            rows, nbytes = replicate(args.source, data, factor)
            config = {
                "run": f"x{factor}", "out_dir": str(Path(scratch) / "out"),
                "workers": args.workers, "progress": False,
                "input": {"paths": [str(data / "*.parquet")]},
                # one shared tokenizer, so every size measures the same scoring work
                "tokenizer": {"path": str(tokenizer)} if tokenizer.is_file() else {},
                "score": {"scorers": [{"name": name} for name in args.scorers]},
            }
            cfg_path = Path(scratch) / f"x{factor}.yaml"
            cfg_path.write_text(yaml.safe_dump(config))
            peak, seconds, code = peak_tree_rss(
                [sys.executable, "-m", "metamix.cli", "score", "--config", str(cfg_path)])
            if code != 0:
                raise SystemExit(f"score failed at factor {factor}")
            print(f"{factor:>6} {rows:>9,} {nbytes / 1e6:>8.1f} {seconds:>8.1f} "
                  f"{rows / seconds:>8,.0f} {peak:>13,.0f}")
        for mb in [m for m in args.huge_mb if m > 0]:
            huge_run(Path(scratch), mb, args, tokenizer)


def huge_run(scratch: Path, mb: int, args: argparse.Namespace, tokenizer: Path) -> None:
    """One ``mb`` MB document in a JSONL file with a few normal ones: with the default
    ``input.max_doc_bytes`` (5 MB) it is quarantined as too_large, and memory stays flat."""
    data = scratch / f"huge{mb}"
    data.mkdir()
    word = "lorem ipsum dolor sit amet, consectetur adipiscing elit.\n"
    with open(data / "in.jsonl", "w", encoding="utf-8") as fh:
        for i in range(20):
            fh.write(json.dumps({"id": f"n{i}", "domain": "web",
                                 "text": f"A normal document number {i}. " * 40}) + "\n")
        fh.write(json.dumps({"id": "huge", "domain": "web",
                             "text": word * (mb * 2**20 // len(word))}) + "\n")
    config = {"run": f"huge{mb}", "out_dir": str(scratch / "out"), "workers": args.workers,
              "progress": False, "input": {"paths": [str(data / "in.jsonl")]},
              "tokenizer": {"path": str(tokenizer)} if tokenizer.is_file() else {},
              "score": {"scorers": [{"name": name} for name in args.scorers]}}
    cfg_path = scratch / f"huge{mb}.yaml"
    cfg_path.write_text(yaml.safe_dump(config))
    peak, seconds, code = peak_tree_rss(
        [sys.executable, "-m", "metamix.cli", "score", "--config", str(cfg_path)])
    quarantine = sorted((scratch / "out" / f"huge{mb}" / "quarantine").glob("*.parquet"))
    reasons = [r for q in quarantine for r in pq.read_table(q).column("reason").to_pylist()]
    print(f"one {mb} MB document: exit {code}, {seconds:.1f}s, peak RSS {peak:,.0f} MiB "
          f"(goal <= 2,048), quarantined {reasons}")


if __name__ == "__main__":
    main()
