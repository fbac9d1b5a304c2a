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

The pass is resumable like a stage: its record (``_manifests/dups/all.json``) names the
scored shards' hashes and the dedup config; while they and its outputs match, it is
skipped. Files are written under temporary names and renamed, the record last.
"""

from __future__ import annotations

import hashlib
import shutil
import time
import unicodedata
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from rich.console import Console

from metamix.base.atomic import atomic_path
from metamix.base.hashing import file_hash, json_hash
from metamix.base.progress import make_progress
from metamix.base.storage import arrow_source, is_remote, relative
from metamix.pipeline.config import PipelineConfig
from metamix.pipeline.manifest import ShardRecord, ShardStats, StageManifest
from metamix.pipeline.report import StageReport

STAGE = "dups"
RECORD = "all"
DUP_COLUMNS = ("dup_exact_cluster", "dup_exact_keep", "dup_near_cluster", "dup_near_keep")
_SCHEMA = pa.schema([("id", pa.string()), ("dup_exact_cluster", pa.string()),
                     ("dup_exact_keep", pa.bool_()), ("dup_near_cluster", pa.string()),
                     ("dup_near_keep", pa.bool_())])
_READ_ROWS = 2048
#: bump when the definition of a duplicate changes: reruns the pass
DEDUP_VERSION = 1


def exact_key(text: str) -> bytes:
    """The normalized content hash: NFKC, case-folded, runs of whitespace as one space."""
    normalized = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    return hashlib.blake2b(normalized.encode("utf-8"), digest_size=16).digest()


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


def run_dedup(cfg: PipelineConfig, console: Console, scored: list[ShardRecord]
              ) -> StageReport | None:
    """Write ``dups/`` for the scored shards (or skip: it matches); None when disabled."""
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
    fingerprint = json_hash([rec.outputs for rec in sorted(scored, key=lambda r: r.shard)])
    config_hash = json_hash([DEDUP_VERSION, dcfg.model_dump(mode="json"), cfg.seed])
    started = time.monotonic()
    done = manifest.completed(RECORD, fingerprint, config_hash)
    if done is None:
        done = _compute(cfg, console, in_paths, fingerprint, config_hash)
        manifest.save(done)
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


def _compute(cfg: PipelineConfig, console: Console, in_paths: list[Path], fingerprint: str,
             config_hash: str) -> ShardRecord:
    from metamix.pipeline.minhash import MinHasher, lsh_clusters, lsh_params  # numba

    dcfg = cfg.dedup
    hasher = MinHasher(num_perm=dcfg.num_perm, ngram=dcfg.ngram, seed=cfg.seed)
    ids: list[str] = []
    keys: list[bytes] = []
    signatures: list[np.ndarray] = []
    rows_per_shard: list[int] = []
    total = sum(pq.ParquetFile(arrow_source(p)).metadata.num_rows for p in in_paths)
    started = time.monotonic()
    n_bytes = 0
    with make_progress(console, cfg.progress) as progress:
        bar = progress.add_task("dedup", total=total, mb=0.0, rate=0.0)
        for path in in_paths:
            n_rows = 0
            reader = pq.ParquetFile(arrow_source(path))
            for batch in reader.iter_batches(_READ_ROWS, columns=["id", "text"]):
                texts = batch.column("text")
                ids.extend(batch.column("id").to_pylist())
                if dcfg.exact:
                    keys.extend(exact_key(t) for t in texts.to_pylist())
                if dcfg.near:
                    signatures.append(hasher.signatures(texts))
                n_rows += batch.num_rows
                n_bytes += texts.nbytes
                progress.update(bar, advance=batch.num_rows, mb=n_bytes / 1e6,
                                rate=len(ids) / max(time.monotonic() - started, 1e-9))
            rows_per_shard.append(n_rows)
    id_array = np.array(ids, dtype=object)
    n = len(ids)
    none = pa.nulls(n, pa.string())
    keep_all = pa.array(np.ones(n, dtype=bool))
    exact_rep = representatives(keys) if dcfg.exact else None
    exact = cluster_columns(id_array, exact_rep) if exact_rep is not None else (none,
                                                                                keep_all)
    if dcfg.near and n:
        bands, rows, bar = lsh_params(dcfg.threshold, dcfg.num_perm)
        # an exact duplicate is a near duplicate too, whatever case folding did to its words
        near = cluster_columns(id_array, lsh_clusters(np.concatenate(signatures), bands, rows,
                                                      min_agreement=bar, same_as=exact_rep))
    else:
        near = (none, keep_all)
    table = pa.Table.from_arrays([pa.array(ids, pa.string()), *exact, *near], schema=_SCHEMA)
    outputs = {}
    offset = 0
    for path, n_rows in zip(in_paths, rows_per_shard, strict=True):
        out = cfg.run_dir / STAGE / path.name
        with atomic_path(out) as tmp:
            pq.write_table(table.slice(offset, n_rows), tmp, compression="zstd")
        outputs[relative(out, cfg.run_dir)] = file_hash(out)
        offset += n_rows
    stats = ShardStats(read=n, written=n)
    return ShardRecord(shard=RECORD, input="scored", input_fingerprint=fingerprint,
                       config_hash=config_hash, outputs=outputs, stats=stats)


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
