"""Per-shard completion records, the basis of resume.

A shard counts as done only when its record exists, names the same input fingerprint and
stage config hash, and its output files still hash to what the record says. Records hold
no timestamps, so a resumed run and a clean run leave identical manifests.

Manifests live beside the data folders, in ``<run>/_manifests/`` (``<stage>.json`` and
``<stage>/<shard>.json``), never inside them: ``load_dataset("parquet", data_dir=...)``
reads every file of a data folder and fails on a JSON file there.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from metamix.base.atomic import write_json_atomic
from metamix.base.hashing import file_hash
from metamix.base.storage import as_path, is_remote, relative

#: The run folder's manifest folder (a name no stage uses, outside every data folder).
MANIFESTS_DIR = "_manifests"


def stage_summary_path(run_dir: Path, stage: str) -> Path:
    """``<run>/_manifests/<stage>.json``: a stage's totals and every shard's record."""
    return run_dir / MANIFESTS_DIR / f"{stage}.json"


def shard_record_path(run_dir: Path, stage: str, shard: str) -> Path:
    """``<run>/_manifests/<stage>/<shard>.json``: the record that makes a shard resumable."""
    return run_dir / MANIFESTS_DIR / stage / f"{shard}.json"


def input_fingerprint(path: str | Path) -> str:
    """Content hash of a file, or of every file under a directory (datasets folders).

    An object on a store is fingerprinted by the store's own content tag (ETag / md5Hash)
    and size, one metadata request instead of reading terabytes on the driver at every run;
    a store that gives no tag falls back to hashing the bytes."""
    p = as_path(path)
    if is_remote(p):
        info = p.fs.info(p.path)
        tag = next((str(info[k]).strip('"') for k in ("ETag", "etag", "md5Hash", "crc32c")
                    if info.get(k)), None)
        if tag is not None and info.get("type", "file") == "file":
            return f"{p.protocol}-tag:{tag}:{info.get('size')}"
    if p.is_file():
        return file_hash(p)
    h = hashlib.blake2b(digest_size=16)
    for f in sorted((q for q in p.rglob("*") if q.is_file()), key=str):
        h.update(relative(f, p).encode())
        h.update(file_hash(f).encode())
    return h.hexdigest()


@dataclass
class ShardStats:
    read: int = 0
    written: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    quarantined: Counter[str] = field(default_factory=Counter)
    bytes_in: int = 0

    def check(self, label: str) -> None:
        """The accounting invariant: every row read is written, dropped or quarantined."""
        accounted = self.written + sum(self.dropped.values()) + sum(self.quarantined.values())
        if accounted != self.read:
            raise RuntimeError(
                f"{label}: read {self.read} != written {self.written} + dropped "
                f"{sum(self.dropped.values())} + quarantined {sum(self.quarantined.values())}"
            )

    def add(self, other: ShardStats) -> None:
        self.read += other.read
        self.written += other.written
        self.dropped.update(other.dropped)
        self.quarantined.update(other.quarantined)
        self.bytes_in += other.bytes_in

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["dropped"] = dict(sorted(self.dropped.items()))
        d["quarantined"] = dict(sorted(self.quarantined.items()))
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ShardStats:
        return cls(d["read"], d["written"], Counter(d["dropped"]), Counter(d["quarantined"]),
                   d.get("bytes_in", 0))


@dataclass
class ShardRecord:
    shard: str
    input: str
    input_fingerprint: str
    config_hash: str
    outputs: dict[str, str]  # relative path -> content hash
    stats: ShardStats

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["stats"] = self.stats.to_json()
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ShardRecord:
        d = dict(d)
        d["stats"] = ShardStats.from_json(d["stats"])
        return cls(**d)


class StageManifest:
    """The records of one stage's shards under ``<run>/_manifests/<stage>/``."""

    def __init__(self, stage_dir: Path) -> None:
        self.stage_dir = stage_dir
        self.record_dir = stage_dir.parent / MANIFESTS_DIR / stage_dir.name
        self.summary_path = stage_summary_path(stage_dir.parent, stage_dir.name)

    def record_path(self, shard: str) -> Path:
        return self.record_dir / f"{shard}.json"

    def adopt_legacy(self) -> None:
        """Move records an older metamix kept inside the data folder (``<stage>/_manifest/``,
        ``<stage>/_manifest.json``) to ``_manifests/``, so its shards still resume."""
        legacy = self.stage_dir / "_manifest"
        if legacy.is_dir():
            self.record_dir.mkdir(parents=True, exist_ok=True)
            for path in legacy.iterdir():
                if path.suffix == ".json" and not path.name.startswith("."):
                    target = self.record_dir / path.name
                    if not target.exists():
                        os.replace(path, target)
                        continue
                path.unlink()
            legacy.rmdir()
        (self.stage_dir / "_manifest.json").unlink(missing_ok=True)

    def split_done(self, tasks: Sequence[Any]) -> tuple[dict[str, ShardRecord], list[Any]]:
        """(shard -> record of the tasks already complete, the tasks still to run); a task
        has ``shard``, ``input_fingerprint`` and ``config_hash``."""
        done: dict[str, ShardRecord] = {}
        todo = []
        for task in tasks:
            rec = self.completed(task.shard, task.input_fingerprint, task.config_hash)
            if rec is None:
                todo.append(task)
            else:
                done[task.shard] = rec
        return done, todo

    def completed(self, shard: str, input_fp: str, config_hash: str) -> ShardRecord | None:
        path = self.record_path(shard)
        if not path.is_file():
            return None
        try:
            rec = ShardRecord.from_json(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError):
            return None
        if rec.input_fingerprint != input_fp or rec.config_hash != config_hash:
            return None
        for rel, digest in rec.outputs.items():
            out = self.stage_dir.parent / rel
            if not out.is_file() or file_hash(out) != digest:
                return None
        return rec

    def save(self, rec: ShardRecord) -> None:
        write_json_atomic(self.record_path(rec.shard), rec.to_json())

    def save_summary(self, records: list[ShardRecord], extra: dict[str, Any]) -> ShardStats:
        total = ShardStats()
        for rec in records:
            total.add(rec.stats)
        total.check(f"stage {self.stage_dir.name}")
        write_json_atomic(
            self.summary_path,
            {**extra, "totals": total.to_json(),
             "shards": [r.to_json() for r in sorted(records, key=lambda r: r.shard)]},
        )
        return total
