"""Exact and near duplicates across every scored shard of a run: the global pass after
scoring.

Per-shard scoring cannot see a document repeated in another file, so this pass reads the
scored shards in order and writes, aligned row for row with ``scored/part-N.parquet``,
``dups/part-N.parquet`` with the user's ``id`` and:

* ``dup_exact_cluster`` / ``dup_exact_keep``: documents whose normalized text (NFKC,
  case-folded, whitespace collapsed) hashes the same;
* ``dup_near_cluster`` / ``dup_near_keep``: MinHash LSH over word n-grams with each
  candidate pair verified on its whole signature (``metamix.pipeline.minhash``), Jaccard
  threshold ``dedup.threshold``.

A cluster is named by the id of its first document in run order (shard, then row), which
is the one kept; a document in no cluster has a NULL cluster and is kept. Documents are
never renamed: ids stay the user's. ``select`` joins these columns by id and, unless
``select.drop_duplicates: false``, drops the documents not kept (reasons
``duplicate_exact`` and ``duplicate_near``).

The pass runs as four stages of tasks on the command's executor (local pool or Ray), none
of which holds the corpus: signatures per scored shard, candidate pairs per hash partition
of the band keys (``metamix.pipeline.dedup_stages``), connected components out of core,
then ``dups/`` per shard (``metamix.pipeline.dedup_clusters``); memory per task is one
shard or ``dedup.duckdb_memory_limit``. Their files and records live in the work folder
(``work_dir``), so a killed pass resumes per shard and partition; it is removed once
``dups/`` is complete (``dedup.keep_work_files`` keeps it).

The pass is resumable like a stage: its record (``_manifests/dups/all.json``) names the
scored shards' hashes and the dedup keys that decide duplicates; while they and its outputs
match, it is skipped. Files are written under temporary names and renamed, the record last.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from rich.console import Console

from metamix.base.atomic import atomic_path
from metamix.base.hashing import file_hash, json_hash
from metamix.base.storage import arrow_source, is_remote, relative
from metamix.pipeline.config import PipelineConfig
from metamix.pipeline.dedup_stages import exact_key as exact_key  # where callers look for it
from metamix.pipeline.executor import WorkerPool, threads_per_worker
from metamix.pipeline.manifest import ShardRecord, ShardStats, StageManifest
from metamix.pipeline.report import StageReport

STAGE = "dups"
RECORD = "all"
DUP_COLUMNS = ("dup_exact_cluster", "dup_exact_keep", "dup_near_cluster", "dup_near_keep")
#: the stages' folder inside a local run folder (``work_dir``)
WORK_DIR = "_dedup"
#: bump when the definition of a duplicate changes: reruns the pass
DEDUP_VERSION = 1


def representatives(keys: list[bytes]) -> np.ndarray:
    """Index of the first document with the same key, per document."""
    first: dict[bytes, int] = {}
    return np.array([first.setdefault(k, i) for i, k in enumerate(keys)], dtype=np.int64)


def cluster_columns(ids: np.ndarray, rep: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """(cluster, keep): the representative's id for members of clusters of two or more."""
    sizes = np.bincount(rep, minlength=len(rep))
    in_cluster = sizes[rep] > 1
    cluster = np.where(in_cluster, ids[rep], None)
    return pa.array(cluster, pa.string()), pa.array(rep == np.arange(len(rep)), pa.bool_())


def dup_paths(run_dir: Path, scored: list[Path]) -> list[Path]:
    """The ``dups/`` file of each scored shard (they exist once the pass has run)."""
    return [run_dir / STAGE / p.name for p in scored]


def _remove_tree(path: Path) -> None:
    if is_remote(path):
        if path.exists():
            path.fs.rm(path.path, recursive=True)  # type: ignore[attr-defined]
        return
    shutil.rmtree(path, ignore_errors=True)


def work_dir(cfg: PipelineConfig) -> Path:
    """The stages' folder: ``dedup.work_dir``, else ``<run>/_dedup`` (a local temporary
    folder named after the run folder when that is on an object store)."""
    if cfg.dedup.work_dir is not None:
        return Path(cfg.resolve(cfg.dedup.work_dir))
    if is_remote(cfg.run_dir):
        return Path(tempfile.gettempdir()) / f"metamix-dedup-{json_hash(str(cfg.run_dir))}"
    return cfg.run_dir / WORK_DIR


def run_dedup(cfg: PipelineConfig, console: Console, scored: list[ShardRecord],
              pool: Any = None) -> StageReport | None:
    """Write ``dups/`` for the scored shards (or skip: it matches); None when disabled.
    ``pool``: the command's executor (a local pool of ``workers`` when None)."""
    dcfg = cfg.dedup
    run_dir = cfg.run_dir
    stage_dir = run_dir / STAGE
    manifest = StageManifest(stage_dir)
    if not (dcfg.exact or dcfg.near):   # no stale dups/ for select to join
        _remove_tree(stage_dir)
        _remove_tree(manifest.record_dir)
        manifest.summary_path.unlink(missing_ok=True)
        return None
    shards = sorted(r.shard for r in scored)
    in_paths = [run_dir / "scored" / f"{s}.parquet" for s in shards]
    ordered = sorted(scored, key=lambda r: r.shard)
    fingerprint = json_hash([rec.outputs for rec in ordered])
    config_hash = json_hash([DEDUP_VERSION, dcfg.output_fields(), cfg.seed])
    started = time.monotonic()
    done = manifest.completed(RECORD, fingerprint, config_hash)
    if done is None:
        if pool is None:
            with WorkerPool(cfg.n_workers) as own:
                done = _compute(cfg, console, ordered, fingerprint, config_hash, own)
        else:
            done = _compute(cfg, console, ordered, fingerprint, config_hash, pool)
        manifest.save(done)
        if not dcfg.keep_work_files:
            _remove_tree(work_dir(cfg))
        processed = done.stats.read
    else:
        processed = 0
    for path in [*stage_dir.glob(".*.tmp-*"), *stage_dir.glob("*.parquet")]:
        if path.name.startswith(".") or path.stem not in shards:
            path.unlink()
    for path in manifest.record_dir.glob("*.json"):
        if path.stem != RECORD:
            path.unlink()
    counts = duplicate_counts(dup_paths(run_dir, in_paths))
    totals = manifest.save_summary([done], {"stage": STAGE, "config_hash": config_hash,
                                            "not_kept": counts})
    console.print(f"  dups: {counts['exact']:,} exact duplicates and {counts['near']:,} more "
                  f"near duplicates not kept (of {totals.read:,} documents; select drops "
                  "them unless select.drop_duplicates: false)")
    return StageReport(STAGE, len(shards), 0 if processed else len(shards), totals,
                       time.monotonic() - started, processed)


def _params(cfg: PipelineConfig) -> Any:
    from metamix.pipeline.dedup_stages import DedupParams
    from metamix.pipeline.minhash import lsh_params  # numba

    dcfg = cfg.dedup
    bands, rows, bar = lsh_params(dcfg.threshold, dcfg.num_perm)
    return DedupParams(exact=dcfg.exact, near=dcfg.near, num_perm=dcfg.num_perm,
                       ngram=dcfg.ngram, seed=cfg.seed, bands=bands, rows=rows,
                       min_agreement=bar, partitions=dcfg.partitions,
                       memory_limit=dcfg.duckdb_memory_limit,
                       threads=dcfg.duckdb_threads or threads_per_worker(cfg.n_workers))


def _compute(cfg: PipelineConfig, console: Console, scored: list[ShardRecord],
             fingerprint: str, config_hash: str, pool: Any) -> ShardRecord:
    """The four stages (``metamix.pipeline.dedup_stages``, ``dedup_clusters``), each
    resuming from its records under the work folder, then ``dups/`` copied into the run."""
    from metamix.pipeline import dedup_clusters as dc
    from metamix.pipeline import dedup_stages as ds

    params = _params(cfg)
    work = work_dir(cfg)
    base = json_hash([config_hash, params.partitions])
    run = _StageRunner(cfg, console, pool, work)
    paths = [cfg.run_dir / "scored" / f"{r.shard}.parquet" for r in scored]
    counts = [pq.ParquetFile(arrow_source(p)).metadata.num_rows for p in paths]
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(int).tolist()
    shard_tasks = [ds.DedupTask(shard=r.shard, input_fingerprint=json_hash(r.outputs),
                                config_hash=json_hash([base, offsets[i]]), work_dir=str(work),
                                params=params, scored_path=str(paths[i]), offset=offsets[i])
                   for i, r in enumerate(scored)]
    sigs = run("dedup_signatures", ds.SIGNATURES, shard_tasks, ds.signature_shard, offsets[-1])
    sig_files = sorted(f for r in sigs for f in r.outputs)
    sig_fp = json_hash([r.outputs for r in sigs])
    part_tasks = [ds.DedupTask(shard=f"p-{k:04d}", input_fingerprint=sig_fp, config_hash=base,
                               work_dir=str(work), params=params, partition=k, inputs=sig_files,
                               offsets=offsets[:-1])
                  for k in range(params.partitions)]
    parts = run("dedup_pairs", ds.PAIRS, part_tasks, ds.pair_partition, None)
    part_files = sorted(f for r in parts for f in r.outputs)
    ids = [f for f in sig_files if f.startswith(ds.SIGNATURES + "/")]
    cluster_task = ds.DedupTask(shard="clusters", input_fingerprint=json_hash(
        [sig_fp, [r.outputs for r in parts]]), config_hash=base, work_dir=str(work),
        params=params, offset=offsets[-1], inputs=[*part_files, *ids])
    [clusters] = run("dedup_clusters", "clusters", [cluster_task], dc.cluster_table, None)
    write_tasks = [ds.DedupTask(shard=t.shard, input_fingerprint=json_hash(
        [clusters.outputs, sigs[i].outputs]), config_hash=base, work_dir=str(work),
        params=params, offset=t.offset) for i, t in enumerate(shard_tasks)]
    written = run("dedup_write", dc.DUPS, write_tasks, dc.write_dups, offsets[-1])
    outputs = {}
    for rec in written:
        [rel] = rec.outputs
        out = cfg.run_dir / STAGE / Path(rel).name
        with atomic_path(out) as tmp:
            tmp.write_bytes((work / rel).read_bytes())
        outputs[relative(out, cfg.run_dir)] = file_hash(out)
    stats = ShardStats(read=offsets[-1], written=offsets[-1])
    return ShardRecord(shard=RECORD, input="scored", input_fingerprint=fingerprint,
                       config_hash=config_hash, outputs=outputs, stats=stats)


class _StageRunner:
    """Runs one dedup stage's tasks on the pool, skipping those whose record under
    ``<work>/_manifests/<stage>/`` still matches (as ``runner._run_stage`` does)."""

    def __init__(self, cfg: PipelineConfig, console: Console, pool: Any, work: Path) -> None:
        self.cfg, self.console, self.pool, self.work = cfg, console, pool, work

    def __call__(self, label: str, stage: str, tasks: list[Any], fn: Any,
                 total_docs: int | None) -> list[ShardRecord]:
        manifest = StageManifest(self.work / stage)
        done, todo = manifest.split_done(tasks)
        if total_docs is not None:
            total_docs -= sum(r.stats.read for r in done.values())
        for rec in self.pool.map(fn, todo, label=label, total_docs=total_docs,
                                 console=self.console, show_progress=self.cfg.progress and
                                 bool(todo), docs_of=lambda r: r.stats.read):
            done[rec.shard] = rec   # its record is saved by the task
        return [done[t.shard] for t in tasks]


def duplicate_counts(paths: list[Path]) -> dict[str, int]:
    """Documents ``select`` drops: exact duplicates not kept, and near duplicates not kept
    that are not exact ones (the reason order ``select`` uses)."""
    counts = {"exact": 0, "near": 0}
    for path in paths:
        table = pq.read_table(arrow_source(path), columns=["dup_exact_keep", "dup_near_keep"])
        exact_kept = table.column("dup_exact_keep")
        counts["exact"] += int(pc.sum(pc.invert(exact_kept)).as_py() or 0)
        near_only = pc.and_(pc.invert(table.column("dup_near_keep")), exact_kept)
        counts["near"] += int(pc.sum(near_only).as_py() or 0)
    return counts
