"""Several input sources in one run (``inputs:``): unique ids across them, counts per source.

Each source is ingested with its own paths, format and field mapping into the one
``ingest/`` stage (its shards numbered after the previous source's), so ``scored/`` holds
every source with one schema. Ids stay the user's: a source's ``id_prefix`` is prepended
when given, and an id that two sources both give (each with an ``id_field``) stops the run
after ingest with one line naming both files and the fix, since silently quarantining one
source's rows as duplicates would drop most of a source whose ids merely count from 0 like
another's. Content-hash ids (``id_field: null``) are the text itself: two sources holding
the same text are duplicates, quarantined as ``duplicate_id`` like any repeated id.

``_manifests/sources.json`` records, per source, the rows ingest read, wrote and
quarantined and the rows ``scored/`` kept (a rerun writes the same bytes).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from metamix.base.atomic import write_json_atomic
from metamix.base.errors import UserError
from metamix.pipeline.config import InputConfig
from metamix.pipeline.manifest import ShardRecord, stage_summary_path

#: ``_manifests/<this>.json``
SOURCES_MANIFEST = "sources"


def check_unique_ids(sources: Sequence[InputConfig], records: Sequence[ShardRecord],
                     shard_paths: Sequence[Path], shard_sources: dict[str, int]) -> None:
    """Stop when two sources with id fields share an id (one line: both files, the id,
    how many ids they share, the fix)."""
    with_ids = {i for i, s in enumerate(sources) if s.id_field}
    if len(with_ids) < 2:
        return
    import duckdb

    from metamix.pipeline.selection.engine import register_object_stores

    label = {p.name: r.input for p, r in zip(shard_paths, records, strict=True)}
    owner = [[str(p), shard_sources[r.shard]] for p, r in zip(shard_paths, records,
                                                               strict=True)
             if shard_sources[r.shard] in with_ids]
    con = duckdb.connect()
    try:
        con.execute("SET threads TO 2")
        register_object_stores(con, shard_paths)
        con.execute("CREATE TEMP TABLE owner (filename VARCHAR, src INTEGER)")
        con.executemany("INSERT INTO owner VALUES (?, ?)", owner)
        con.execute("CREATE TEMP TABLE ids AS SELECT r.id, o.src, r.filename FROM "
                    "read_parquet(?, filename = true) AS r JOIN owner AS o USING (filename)",
                    [[f for f, _ in owner]])
        con.execute("CREATE TEMP TABLE shared AS SELECT id FROM ids GROUP BY id "
                    "HAVING count(DISTINCT src) > 1")
        [(n_shared,)] = con.sql("SELECT count(*) FROM shared").fetchall()
        if not n_shared:
            return
        [(doc_id,)] = con.sql("SELECT min(id) FROM shared").fetchall()
        where = con.execute("SELECT src, min(filename) FROM ids WHERE id = ? GROUP BY src "
                            "ORDER BY src LIMIT 2", [doc_id]).fetchall()
    finally:
        con.close()
    (first, file_a), (second, file_b) = where
    key_a, key_b = sources[first].key, sources[second].key
    raise UserError(
        f"{key_a} ({label[Path(file_a).name]}) and {key_b} ({label[Path(file_b).name]}) both "
        f"have id {doc_id!r} ({n_shared:,} ids in common): ids must be unique across "
        f"sources; set {key_b}.id_prefix (e.g. 'src{second}:') to keep them apart")


def write_source_counts(run_dir: Path, sources: Sequence[InputConfig],
                        shard_sources: dict[str, int], ingest: Sequence[ShardRecord],
                        scored: Sequence[ShardRecord]) -> dict[str, Any]:
    """``_manifests/sources.json``: per source (its config key), the files and rows read,
    written and quarantined by ingest, and the rows written to ``scored/``."""
    out: dict[str, Any] = {}
    for i, source in enumerate(sources):
        mine = [r for r in ingest if shard_sources.get(r.shard) == i]
        quarantined: Counter[str] = Counter()
        for r in mine:
            quarantined.update(r.stats.quarantined)
        kept = {r.shard for r in mine}
        out[source.key] = {
            "files": sorted({r.input for r in mine}),
            "read": sum(r.stats.read for r in mine),
            "written": sum(r.stats.written for r in mine),
            "quarantined": dict(sorted(quarantined.items())),
            "scored": sum(r.stats.written for r in scored if r.shard in kept),
        }
    write_json_atomic(stage_summary_path(run_dir, SOURCES_MANIFEST), {"sources": out})
    return out
