"""End-to-end CPU of ``metamix score`` (goals: heuristic-only >= 15x less CPU than a datatrove
pipeline of its four quality filters; the full demo score >= 500 docs/s per core), and the
BPE encoders measured on the corpus (goal: >= 5 MB/s per core with ids identical to
``tokenizers``).

Every run is a fresh process tree charged its user + sys CPU, all of it: metamix's pool
workers and datatrove's forkserver and its workers included (this process makes itself the
child subreaper, so orphaned descendants are reaped here and counted too). The compared
runs are interleaved (metamix, datatrove, metamix, ...); medians and the spread over the
repeats are printed. Both read the same Parquet files and write zstd Parquet, with the same
number of worker processes (``--workers``).

- metamix, heuristic only: ``metamix score`` with the five heuristic families and
  ``n_tokens`` (the run's BPE; the tokenizer is trained and cached before timing, as it is
  on every run after the first), no validation split, dedup off (datatrove's pipeline has
  no dedup either; ``bench/dedup.py`` measures it against datatrove's own).
- datatrove 0.10 (``make setup-bench``): ParquetReader, its Gopher quality, Gopher
  repetition, C4 quality and FineWeb quality filters, ParquetWriter, on a
  ``LocalPipelineExecutor`` with one task per file. ``--datatrove-mode chain`` is the
  pipeline as usually written (each filter drops documents, so later filters see fewer);
  ``annotate`` runs every filter on every document and writes all of them with the four
  decisions, the work metamix does. Both are timed by default.
- metamix, the demo config: every scorer of ``configs/demo.yaml`` plus the validation split,
  docs/s per core = training documents / CPU seconds of the whole command.

    .venv/bin/python bench/score_speed.py [--repeats 2] [--docs N] [--no-demo]
        [--datatrove-mode chain|annotate|both] [--encoders-only]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

REPO = Path(__file__).resolve().parent.parent
TRAIN = REPO / "data" / "sample" / "train"
HEURISTICS = ["redpajama", "gopher_quality", "gopher_repetition", "c4", "fineweb"]
PR_SET_CHILD_SUBREAPER = 36


# --- CPU of a whole process tree --------------------------------------------------------

def become_subreaper() -> None:
    """Orphaned descendants (datatrove's and metamix's forkservers and their workers, which
    outlive the command by a moment) are reparented to this process, which reaps them, so
    their CPU lands in RUSAGE_CHILDREN (``ray_scaling.py`` uses this too)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(user + sys CPU seconds of the command and every descendant, wall seconds)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, check=False)
    while True:  # reap every leftover descendant; waitpid blocks until each one exits
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            break
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed:\n{proc.stderr[-3000:]}")
    return (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime), wall


# --- inputs ------------------------------------------------------------------------------

def corpus_files(work: Path, n_docs: int | None) -> tuple[Path, int, float]:
    """The bundled train files, or a deterministic sample of ``n_docs`` of their documents
    spread over as many files; returns (folder, documents, MB of text)."""
    files = sorted(TRAIN.glob("*.parquet"))
    if n_docs is None:
        tables = [pq.read_table(f, columns=["text"]) for f in files]
        folder = TRAIN
    else:
        folder = work / "corpus"
        folder.mkdir()
        table = pa.concat_tables(pq.read_table(f) for f in files)
        rows = np.sort(np.random.default_rng(0).choice(table.num_rows, n_docs, replace=False))
        tables = []
        for i, part in enumerate(np.array_split(rows, len(files))):
            tables.append(table.take(pa.array(part)))
            pq.write_table(tables[-1], folder / f"part-{i:03d}.parquet", compression="zstd")
    docs = sum(t.num_rows for t in tables)
    mb = sum(len(s.encode()) for t in tables for s in t.column("text").to_pylist()) / 1e6
    return folder, docs, mb


def heuristic_config(work: Path, folder: Path, workers: int) -> Path:
    demo = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    cfg = {"run": "heuristics", "out_dir": str(work / "out"), "seed": 0, "workers": workers,
           "progress": False,
           "input": {**demo["input"], "paths": [str(folder / "*.parquet")]},
           "tokenizer": demo["tokenizer"],
           # dedup is a separate job in datatrove's pipeline too: not part of this comparison
           "dedup": {"exact": False, "near": False},
           "score": {"batch_size": demo["score"]["batch_size"],
                     "scorers": [{"name": n} for n in HEURISTICS]}}
    path = work / "heuristics.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def metamix_cmd(config: Path, run: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "metamix", "score", "--config", str(config),
            "--set", f"run={run}", "--set", "progress=false", *extra]


def seed_tokenizer_cache(out_dir: Path) -> None:
    """The run's tokenizer, already trained (out/_cache of an earlier demo run), if any;
    otherwise the untimed warm-up run trains it."""
    for path in (REPO / "out" / "_cache").glob("tokenizer-*.json"):
        (out_dir / "_cache").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, out_dir / "_cache" / path.name)


# --- datatrove ---------------------------------------------------------------------------

DATATROVE_SCRIPT = r'''
import os, sys
os.environ.setdefault("LOGURU_LEVEL", "ERROR")
from loguru import logger
logger.remove()
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter,
                                        GopherQualityFilter, GopherRepetitionFilter)
from datatrove.pipeline.readers import ParquetReader
from datatrove.pipeline.writers import ParquetWriter
sys.path.insert(0, os.path.dirname(sys.argv[5]))
from score_speed import AnnotateAll

source, out, logs, mode, _, workers, tasks = sys.argv[1:8]
filters = [GopherQualityFilter(), GopherRepetitionFilter(), C4QualityFilter(),
           FineWebQualityFilter()]
middle = filters if mode == "chain" else [AnnotateAll(filters)]
if __name__ == "__main__":
    LocalPipelineExecutor(
        pipeline=[ParquetReader(source, glob_pattern="*.parquet"), *middle,
                  ParquetWriter(out, compression="zstd")],
        tasks=int(tasks), workers=int(workers), logging_dir=logs,
    ).run()
'''


def _annotate_all_base() -> type:
    try:
        from datatrove.pipeline.base import PipelineStep
    except ImportError:
        return object
    return PipelineStep


class AnnotateAll(_annotate_all_base()):  # type: ignore[misc]
    """Every filter on every document (a fresh copy each, as C4 rewrites text); all
    documents pass on with ``<Filter>_drop_reason`` metadata ("" = kept), like metamix's
    columns."""

    name = "annotate with every filter"
    type = "Filters"

    def __init__(self, filters: list) -> None:
        super().__init__()
        self.filters = filters

    def run(self, data: Iterator, rank: int = 0, world_size: int = 1) -> Iterator:
        from datatrove.data import Document

        for doc in data:
            for filt in self.filters:
                result = filt.filter(Document(text=doc.text, id=doc.id))
                keep, reason = result if isinstance(result, tuple) else (result, None)
                # "" when kept: a batch with no drop must keep the string type
                doc.metadata[f"{type(filt).__name__}_drop_reason"] = "" if keep else (
                    reason or "dropped")
            self.stat_update("documents")
            yield doc


def datatrove_cmd(folder: Path, work: Path, mode: str, workers: int, run: str) -> list[str]:
    tasks = len(list(folder.glob("*.parquet")))
    return [sys.executable, "-c", DATATROVE_SCRIPT, str(folder), str(work / "dt" / run / "out"),
            str(work / "dt" / run / "logs"), mode, str(Path(__file__).resolve()), str(workers),
            str(tasks)]


# --- encoders ----------------------------------------------------------------------------

def measure_encoders(tokenizer: Path, mb_limit: float = 12.0) -> None:
    """MB/s per core of each BPE encoder on corpus text, and whether its ids equal
    ``tokenizers``' ids; one process, pinned to one core."""
    from tokenizers import Tokenizer

    from metamix.base.bpe import BpeEncoder

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    os.environ["RAYON_NUM_THREADS"] = "1"
    texts: list[str] = []
    for f in sorted(TRAIN.glob("*.parquet")):  # a slice of every file, every domain
        texts += pq.read_table(f, columns=["text"]).column("text").to_pylist()[::3]
    rng = np.random.default_rng(0)
    texts = [texts[i] for i in rng.permutation(len(texts))]
    total, kept = 0, []
    for t in texts:
        total += len(t.encode())
        kept.append(t)
        if total > mb_limit * 1e6:
            break
    texts, mb = kept, total / 1e6
    ref_tok = Tokenizer.from_file(str(tokenizer))

    def ids_hf_fast() -> list[list[int]]:
        out = []
        for s in range(0, len(texts), 64):
            out += [e.ids for e in ref_tok.encode_batch_fast(texts[s:s + 64],
                                                              add_special_tokens=False)]
        return out

    def ids_hf() -> list[list[int]]:
        out = []
        for s in range(0, len(texts), 64):
            out += [e.ids for e in ref_tok.encode_batch(texts[s:s + 64],
                                                         add_special_tokens=False)]
        return out

    fast = BpeEncoder(str(tokenizer))

    def ids_fastokens() -> list[list[int]]:
        flat, offsets = fast.encode(texts)
        return [flat[offsets[i]:offsets[i + 1]].tolist() for i in range(len(texts))]

    candidates = {"tokenizers encode_batch (offsets)": ids_hf,
                  "tokenizers encode_batch_fast": ids_hf_fast,
                  f"fastokens encode_batch_flat ({fast.backend})": ids_fastokens}
    tiktoken_enc = _tiktoken_encoding(tokenizer)
    if tiktoken_enc is not None:
        candidates["tiktoken, the run's ranks (1 thread)"] = lambda: [
            tiktoken_enc.encode(t, allowed_special="all") for t in texts]
    reference = None
    print(f"\nBPE encoders on {len(texts):,} documents, {mb:.1f} MB (one core; best of 2)")
    print(f"{'encoder':44}{'cpu s':>8}{'MB/s':>8}  ids == tokenizers")
    for name, fn in candidates.items():
        best, ids = float("inf"), None
        for _ in range(2):
            t0 = time.process_time()
            ids = fn()
            best = min(best, time.process_time() - t0)
        if reference is None:
            reference = ids
        differ = sum(a != b for a, b in zip(ids, reference, strict=True))
        same = "yes" if ids == reference else f"NO ({differ} docs differ)"
        print(f"{name:44}{best:>8.2f}{mb / best:>8.1f}  {same}")
    if tiktoken_enc is None:
        print("(tiktoken not installed: `pip install tiktoken` to include it)")


def _tiktoken_encoding(tokenizer: Path):  # noqa: ANN202
    """tiktoken loaded with the run's own byte-level merges (ranks = token ids)."""
    try:
        import tiktoken
    except ImportError:
        return None
    spec = json.loads(tokenizer.read_text())
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
          *range(ord("®"), ord("ÿ") + 1)]
    cs = bs[:]
    extra = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + extra)
            extra += 1
    byte_of = {chr(c): b for b, c in zip(bs, cs, strict=True)}
    special = {t["content"]: t["id"] for t in spec["added_tokens"]}
    ranks = {bytes(byte_of[c] for c in token): i for token, i in spec["model"]["vocab"].items()
             if token not in special}
    pattern = (r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"""
               r"""|\s+""")
    return tiktoken.Encoding("run", pat_str=pattern, mergeable_ranks=ranks,
                             special_tokens=special)


# --- main --------------------------------------------------------------------------------

def summarize(name: str, runs: list[tuple[float, float]], docs: int) -> float:
    cpu = [r[0] for r in runs]
    med = statistics.median(cpu)
    print(f"{name:34}{med:>9.1f}{min(cpu):>8.1f}{max(cpu):>8.1f}"
          f"{statistics.median(r[1] for r in runs):>9.1f}{docs / med:>12,.0f}")
    return med


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--docs", type=int, default=None,
                        help="a sample of this many train documents (default: all)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--datatrove-mode", choices=["chain", "annotate", "both"],
                        default="both")
    parser.add_argument("--no-demo", action="store_true", help="skip the full demo config")
    parser.add_argument("--no-datatrove", action="store_true")
    parser.add_argument("--encoders-only", action="store_true")
    args = parser.parse_args()

    tokenizer = REPO / "scorers" / "model_based" / "models" / "ngram_tokenizer.json"
    if args.encoders_only:
        measure_encoders(tokenizer)
        return
    become_subreaper()
    work = Path(tempfile.mkdtemp(prefix="score-speed-"))
    try:
        folder, docs, mb = corpus_files(work, args.docs)
        config = heuristic_config(work, folder, args.workers)
        seed_tokenizer_cache(work / "out")
        print(f"{docs:,} documents, {mb:.1f} MB in {len(list(folder.glob('*.parquet')))} "
              f"Parquet files; {args.workers} workers each side; CPU = user + sys of every "
              "process; runs interleaved")
        timed(metamix_cmd(config, "warmup"))  # trains/caches the tokenizer, warms JIT caches
        modes = ([] if args.no_datatrove else
                 ["chain", "annotate"] if args.datatrove_mode == "both" else
                 [args.datatrove_mode])
        ours: list[tuple[float, float]] = []
        theirs: dict[str, list[tuple[float, float]]] = {m: [] for m in modes}
        demo: list[tuple[float, float]] = []
        demo_cfg = REPO / "configs" / "demo.yaml"
        for r in range(args.repeats):
            ours.append(timed(metamix_cmd(config, f"h{r}")))
            for mode in modes:
                theirs[mode].append(timed(datatrove_cmd(folder, work, mode, args.workers,
                                                        f"{mode}{r}")))
            if not args.no_demo and args.docs is None:
                demo.append(timed(metamix_cmd(
                    demo_cfg, f"demo{r}", "--set", f"out_dir={work / 'out'}",
                    "--set", f"workers={args.workers}")))
        print(f"\n{'':34}{'cpu med':>9}{'min':>8}{'max':>8}{'wall':>9}{'docs/s/core':>12}")
        ours_med = summarize("metamix score, heuristics + BPE", ours, docs)
        for mode, runs in theirs.items():
            theirs_med = summarize(f"datatrove 4 filters ({mode})", runs, docs)
            ratios = sorted(t[0] / o[0] for t, o in zip(runs, ours, strict=True))
            print(f"{'':34}-> metamix uses {theirs_med / ours_med:.1f}x less CPU "
                  f"(per-pair {ratios[0]:.1f}-{ratios[-1]:.1f}x; goal >= 15x)")
        if demo:
            summarize("metamix score, demo config", demo, docs)
            print(f"{'':34}   goal >= 500 docs/s per core (training docs / CPU of the "
                  "whole command, validation split included)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
