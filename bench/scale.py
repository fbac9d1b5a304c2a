"""`metamix score` with dedup on corpora 1×, 10×, 100× the bundled one, with planted copies:
per stage CPU-seconds per GB, wall, peak RSS of the largest process, intermediate bytes per
GB, and dedup recall/precision against the planted copies.

Each factor ``k`` writes ``k`` perturbed variants of every bundled document (a quarter of
its space-separated tokens replaced by other tokens of the same document, drawn per
variant: 5-gram Jaccard between variants ~0.1, so nearly every document is distinct),
then plants ``--exact`` of them as exact copies (spacing changed) and ``--near`` as near
copies (a trailing "." and one token in a hundred replaced: 5-gram Jaccard ~0.9; a copy
of a document under 100 tokens differs in punctuation and spacing only), each in a random
shard. Ids say what a document is: ``<bundled id>~v<j>`` and ``...~copy-x<n>`` /
``...~copy-n<n>`` for its copies.

Score runs in a subprocess (heuristic scorers + dedup, the demo's tokenizer, 2 workers,
``dedup.keep_work_files: true``) while this script samples ``/proc`` every 0.2 s: CPU time
of the process tree and the RSS of each process. Stage intervals come from the manifests'
modification times (a stage ends when its last record is written); a sample's CPU and RSS
count for the stage it falls in (RSS peaks between two samples are missed).

Recall: planted copies in their source's cluster (exact copies: the exact cluster; near
copies whose exact 5-gram Jaccard with their source reaches 0.8: the near cluster).
Precision: documents not kept that are duplicates of their cluster's first document (of
the same planted group, or at Jaccard >= 0.8 with it, computed exactly).

    nice -n 10 .venv/bin/python bench/scale.py [--factors 1 10] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

REPO = Path(__file__).resolve().parent.parent
SCORERS = ["redpajama", "gopher_quality", "gopher_repetition", "c4", "fineweb"]
STAGES = ["ingest", "tokenizer", "scored", "dedup_signatures", "dedup_pairs",
          "dedup_clusters", "dedup_write", "dups"]
COPY = "~copy-"
_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICK = os.sysconf("SC_CLK_TCK")


def _perturb(tokens: list[str], rng: np.random.Generator, share: float) -> list[str]:
    if not tokens:
        return tokens
    out = list(tokens)
    picks = np.flatnonzero(rng.random(len(out)) < share)
    for i, j in zip(picks, rng.integers(0, len(tokens), len(picks)), strict=True):
        out[i] = tokens[j] if tokens[j] != out[i] else out[i] + "x"
    return out


def build(src: Path, dst: Path, factor: int, exact: float, near: float, seed: int
          ) -> tuple[int, int]:
    """Write the corpus; returns (documents, text bytes)."""
    rng = np.random.default_rng(seed)
    dst.mkdir(parents=True, exist_ok=True)
    shards: list[tuple[str, pa.Table]] = []
    for path in sorted(src.glob("*.parquet")):
        table = pq.read_table(path)
        ids, texts = table.column("id").to_pylist(), table.column("text").to_pylist()
        for j in range(factor):
            new = [" ".join(_perturb(t.split(" "), np.random.default_rng([seed, j, n]), 0.25))
                   for n, t in enumerate(texts)]
            out = table.set_column(table.schema.get_field_index("text"), "text",
                                   pa.array(new, pa.string()))
            out = out.set_column(out.schema.get_field_index("id"), "id",
                                 pa.array([f"{i}~v{j}" for i in ids], pa.string()))
            shards.append((f"{path.stem}-v{j:03d}", out))
    total = sum(t.num_rows for _, t in shards)
    extra: list[list[dict]] = [[] for _ in shards]
    flat = [(s, r) for s, (_, t) in enumerate(shards) for r in range(t.num_rows)]
    for kind, share in (("x", exact), ("n", near)):
        for k, pick in enumerate(rng.choice(len(flat), int(share * total), replace=False)):
            s, r = flat[pick]
            row = shards[s][1].slice(r, 1).to_pylist()[0]
            text = row["text"]
            if kind == "x":
                text = "\n" + text.replace(" ", "  ") + " "
            else:
                tokens = text.split(" ")
                edit = np.random.default_rng([seed, 7, k])
                for i in edit.choice(len(tokens), len(tokens) // 100, replace=False):
                    tokens[i] = tokens[int(edit.integers(len(tokens)))] + "x"
                text = " ".join(tokens) + " ."
            extra[int(rng.integers(len(shards)))].append(
                {**row, "id": f"{row['id']}{COPY}{kind}{k}", "text": text})
    nbytes = 0
    for (name, table), rows in zip(shards, extra, strict=True):
        if rows:
            table = pa.concat_tables([table, pa.Table.from_pylist(rows, schema=table.schema)])
        nbytes += sum(len(t.encode()) for t in table.column("text").to_pylist())
        pq.write_table(table, dst / f"{name}.parquet", compression="zstd")
    return total + sum(len(r) for r in extra), nbytes


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            tree.setdefault(ppid, []).append(int(entry))
    return tree


def _sample(root: int, cpu_seen: dict[int, float]) -> tuple[float, int]:
    """(CPU seconds of every process of the tree so far, largest RSS of one now)."""
    tree = _children()
    todo, largest = [root], 0
    while todo:
        pid = todo.pop()
        todo.extend(tree.get(pid, []))
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        cpu_seen[pid] = (int(fields[11]) + int(fields[12])) / _TICK
        largest = max(largest, int(fields[21]) * _PAGE)
    return sum(cpu_seen.values()), largest


def _ends(run_dir: Path) -> dict[str, float]:
    """When each stage ended (its last record's modification time)."""
    work = run_dir / "_dedup" / "_manifests"
    where = {"ingest": run_dir / "_manifests" / "ingest.json",
             "tokenizer": run_dir / "tokenizer.json",
             "scored": run_dir / "_manifests" / "scored.json",
             "dedup_signatures": work / "signatures", "dedup_pairs": work / "pairs",
             "dedup_clusters": work / "clusters", "dedup_write": work / "dups",
             "dups": run_dir / "_manifests" / "dups.json"}
    ends = {}
    for stage, path in where.items():
        files = list(path.glob("*.json")) if path.is_dir() else [path]
        ends[stage] = max(f.stat().st_mtime for f in files)
    return ends


def measured(cmd: list[str]) -> list[tuple[float, float, int]]:
    """Run ``cmd``: (time, CPU seconds of its tree so far, largest RSS now) every 0.2 s."""
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    samples: list[tuple[float, float, int]] = [(time.time(), 0.0, 0)]
    cpu_seen: dict[int, float] = {}
    while proc.poll() is None:
        cpu, rss = _sample(proc.pid, cpu_seen)
        samples.append((time.time(), cpu, rss))
        time.sleep(0.2)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[2:4]} failed ({proc.returncode}): {err[-2000:]}")
    samples.append((time.time(), sum(cpu_seen.values()), 0))
    return samples


def run_score(config: Path, run_dir: Path) -> dict[str, dict[str, float]]:
    samples = measured([sys.executable, "-m", "metamix", "score", "-c", str(config)])
    started = samples[0][0]
    ends = _ends(run_dir)
    out: dict[str, dict[str, float]] = {}
    start = started
    for stage in STAGES:
        end = ends[stage]
        inside = [s for s in samples if start <= s[0] <= end]
        before = [s for s in samples if s[0] < start]
        after = [s for s in samples if s[0] >= end] or samples[-1:]
        cpu0 = before[-1][1] if before else 0.0
        out[stage] = {"wall_s": end - start, "cpu_s": after[0][1] - cpu0,
                      "peak_rss_mib": max((s[2] for s in inside), default=0) / 2**20}
        start = end
    out["total"] = {"wall_s": samples[-1][0] - started, "cpu_s": samples[-1][1],
                    "peak_rss_mib": max(s[2] for s in samples) / 2**20}
    return out


def _words(text: str) -> list[str]:
    """About the words MinHash sees (``minhash.simplify``: lower case, numbers as 0)."""
    return re.findall(r"[^\W_]+", re.sub(r"\d+", "0", text.lower()))


def jaccard(a: str, b: str, ngram: int = 5) -> float:
    """The 5-gram set Jaccard similarity of two texts, computed exactly."""
    sets = []
    for text in (a, b):
        w = _words(text)
        sets.append({tuple(w[i:i + ngram]) for i in range(max(len(w) - ngram + 1, 1))})
    return len(sets[0] & sets[1]) / max(len(sets[0] | sets[1]), 1)


def quality(run_dir: Path, threshold: float = 0.8) -> dict[str, float]:
    """Recall over the planted copies (near ones: those whose Jaccard with their source
    reaches the threshold); precision over the documents not kept (a duplicate of its
    cluster's first document: same group, or Jaccard with it at least the threshold)."""
    dups = pa.concat_tables([pq.read_table(p) for p in sorted((run_dir / "dups").glob("*"))])
    rows = {r["id"]: r for r in dups.to_pylist()}
    group = {i: i.split(COPY)[0] for i in rows}
    near_copies = [i for i in rows if COPY + "n" in i]
    flagged = [i for i, r in rows.items() if not r["dup_near_keep"]]
    outside = [i for i in flagged if group[rows[i]["dup_near_cluster"]] != group[i]]
    wanted = {*near_copies, *(group[i] for i in near_copies), *outside,
              *(rows[i]["dup_near_cluster"] for i in outside)}
    text = {}
    for path in sorted((run_dir / "scored").glob("*.parquet")):
        table = pq.read_table(path, columns=["id", "text"])
        text.update((i, t) for i, t in zip(table.column("id").to_pylist(),
                                           table.column("text").to_pylist(), strict=True)
                    if i in wanted)
    found = {"x": [0, 0], "n": [0, 0]}
    below = 0
    for i, r in rows.items():
        if COPY not in i:
            continue
        kind = i.split(COPY)[1][0]
        if kind == "n" and jaccard(text[i], text[group[i]]) < threshold:
            below += 1
            continue
        column = "dup_exact_cluster" if kind == "x" else "dup_near_cluster"
        found[kind][1] += 1
        found[kind][0] += r[column] is not None and r[column] == rows[group[i]][column]
    false = sum(jaccard(text[i], text[rows[i]["dup_near_cluster"]]) < threshold
                for i in outside)
    return {"recall_exact": found["x"][0] / max(found["x"][1], 1),
            "recall_near": found["n"][0] / max(found["n"][1], 1),
            "near_below_threshold": below, "precision": 1 - false / max(len(flagged), 1),
            "outside_groups": len(outside), "false_flags": false, "flagged": len(flagged)}


def in_memory_check(run_dir: Path) -> None:
    """The pass that held every signature and id in one process (the algorithm the staged
    pass replaces, from the same library functions); exits 1 unless dups/ equals it."""
    from metamix.pipeline.dedup import cluster_columns, exact_key, representatives
    from metamix.pipeline.minhash import MinHasher, lsh_clusters, lsh_params

    ids: list[str] = []
    keys: list[bytes] = []
    sigs = []
    hasher = MinHasher(num_perm=128, ngram=5, seed=0)
    for path in sorted((run_dir / "scored").glob("*.parquet")):
        for batch in pq.ParquetFile(path).iter_batches(2048, columns=["id", "text"]):
            ids.extend(batch.column("id").to_pylist())
            keys.extend(exact_key(t) for t in batch.column("text").to_pylist())
            sigs.append(hasher.signatures(batch.column("text")))
    id_array = np.array(ids, dtype=object)
    exact_rep = representatives(keys)
    bands, rows, bar = lsh_params(0.8, 128)
    near_rep = lsh_clusters(np.concatenate(sigs), bands, rows, min_agreement=bar,
                            same_as=exact_rep)
    expected = pa.table([pa.array(ids, pa.string()), *cluster_columns(id_array, exact_rep),
                         *cluster_columns(id_array, near_rep)],
                        names=["id", "dup_exact_cluster", "dup_exact_keep",
                               "dup_near_cluster", "dup_near_keep"])
    got = pa.concat_tables([pq.read_table(p) for p in sorted((run_dir / "dups").glob("*"))])
    sys.exit(0 if got.equals(expected) else 1)


def baseline(run_dir: Path) -> dict[str, float]:
    samples = measured([sys.executable, str(Path(__file__).resolve()), "--in-memory",
                        str(run_dir)])
    return {"wall_s": samples[-1][0] - samples[0][0], "cpu_s": samples[-1][1],
            "peak_rss_mib": max(s[2] for s in samples) / 2**20}


def _bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--factors", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--exact", type=float, default=0.1)
    parser.add_argument("--near", type=float, default=0.1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--memory-limit", default="1GB")
    parser.add_argument("--source", type=Path, default=REPO / "data" / "sample" / "train")
    parser.add_argument("--keep", type=Path, help="scratch folder to keep (default: temporary)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--baseline", action="store_true",
                        help="also run the in-memory pass (every signature in one process) "
                             "on the scored shards, and check it gives the same dups/")
    parser.add_argument("--in-memory", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.in_memory:
        return in_memory_check(args.in_memory)
    scratch = args.keep or Path(tempfile.mkdtemp(prefix="metamix-scale-"))
    scratch.mkdir(parents=True, exist_ok=True)
    # the demo's tokenizer, so every size measures the same work (trained on first use)
    tokenizer = REPO / "out" / "demo" / "tokenizer.json"
    if tokenizer.is_file():   # inside out_dir's _cache: its check record is written beside
        cache = scratch / "out" / "_cache"
        cache.mkdir(parents=True, exist_ok=True)
        tokenizer = Path(shutil.copy(tokenizer, cache / "tokenizer.json"))
    results = {}
    try:
        for factor in args.factors:
            data = scratch / f"x{factor}"
            t0 = time.monotonic()
            docs, nbytes = build(args.source, data, factor, args.exact, args.near, seed=0)
            print(f"{factor}x: {docs:,} documents, {nbytes / 1e9:.3f} GB of text "
                  f"(built in {time.monotonic() - t0:.0f} s)", flush=True)
            config = {"run": f"x{factor}", "out_dir": str(scratch / "out"),
                      "workers": args.workers, "progress": False,
                      "input": {"paths": [str(data / "*.parquet")]},
                      "tokenizer": {"path": str(tokenizer)} if tokenizer.is_file() else {},
                      "score": {"scorers": [{"name": n} for n in SCORERS]},
                      "dedup": {"keep_work_files": True, "partitions": args.partitions,
                                "duckdb_memory_limit": args.memory_limit}}
            cfg_path = scratch / f"x{factor}.yaml"
            cfg_path.write_text(yaml.safe_dump(config))
            run_dir = scratch / "out" / f"x{factor}"
            stages = run_score(cfg_path, run_dir)
            work = run_dir / "_dedup"
            inter = {d: _bytes(work / d) for d in ("signatures", "band_keys", "exact_keys",
                                                   "pairs", "links", "dups")}
            inter["clusters"] = _bytes(work / "clusters.parquet")
            results[factor] = {"docs": docs, "text_bytes": nbytes, "stages": stages,
                               "intermediate_bytes": inter, "quality": quality(run_dir)}
            if args.baseline:
                results[factor]["baseline"] = baseline(run_dir)
            _print(factor, results[factor])
    finally:
        if args.keep is None:
            shutil.rmtree(scratch, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    if 1 in results:
        for factor, r in results.items():
            base = results[1]
            def per_gb(res: dict, stages: list[str]) -> float:
                return sum(res["stages"][s]["cpu_s"] for s in stages) / res["text_bytes"]

            ratio = [per_gb(r, group) / max(per_gb(base, group), 1e-12)
                     for group in (["scored"], STAGES[3:], ["total"])]
            print(f"{factor}x / 1x CPU-s per GB: scored {ratio[0]:.2f}, dedup "
                  f"{ratio[1]:.2f}, total {ratio[2]:.2f}")


def _print(factor: int, r: dict) -> None:
    gb = r["text_bytes"] / 1e9
    print(f"{'stage':<18} {'wall s':>8} {'CPU s':>8} {'CPU s/GB':>9} {'peak RSS MiB':>13}")
    for stage, s in r["stages"].items():
        print(f"{stage:<18} {s['wall_s']:>8.1f} {s['cpu_s']:>8.1f} {s['cpu_s'] / gb:>9.0f} "
              f"{s['peak_rss_mib']:>13,.0f}")
    inter = r["intermediate_bytes"]
    print("intermediate MB/GB: " + ", ".join(f"{k} {v / 1e6 / gb:.0f}" for k, v in
                                                inter.items())
          + f"; all {sum(inter.values()) / 1e6 / gb:.0f}")
    if "baseline" in r:
        b, d = r["baseline"], r["stages"]
        staged = {k: sum(d[s][k] for s in STAGES[3:]) for k in ("wall_s", "cpu_s")}
        print(f"in-memory pass (same dups/): wall {b['wall_s']:.1f} s, CPU {b['cpu_s']:.1f} s, "
              f"peak RSS {b['peak_rss_mib']:,.0f} MiB; staged / in-memory: CPU "
              f"{staged['cpu_s'] / b['cpu_s']:.2f}, peak RSS "
              f"{max(d[s]['peak_rss_mib'] for s in STAGES[3:]) / b['peak_rss_mib']:.2f}")
    q = r["quality"]
    print(f"recall exact {q['recall_exact']:.4f}, near {q['recall_near']:.4f} (planted near "
          f"copies below the threshold, not counted: {q['near_below_threshold']}); precision "
          f"{q['precision']:.4f} ({q['flagged']:,} not kept, {q['outside_groups']:,} outside "
          f"their group, {q['false_flags']:,} of them below the threshold)", flush=True)


if __name__ == "__main__":
    main()
