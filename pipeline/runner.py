"""The score job: ingest → duplicate-id barrier → tokenizer → score (+ validation tokens).

Each step is a stage of shard tasks with its own directory and manifest; a rerun skips
every shard whose record still matches, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from metamix.base.atomic import atomic_path, write_json_atomic
from metamix.base.errors import UserError
from metamix.base.hashing import file_hash, json_hash
from metamix.base.storage import is_uri
from metamix.pipeline.config import InputConfig, PipelineConfig
from metamix.pipeline.dedup import run_dedup
from metamix.pipeline.executor import WorkerPool
from metamix.pipeline.fields import KeptField
from metamix.pipeline.ingest import inspect_sources
from metamix.pipeline.manifest import ShardRecord, StageManifest, input_fingerprint
from metamix.pipeline.readers import plan_shards
from metamix.pipeline.report import StageReport, check_stage_output
from metamix.pipeline.scorer_specs import build_scorers
from metamix.pipeline.shard_tasks import ShardTask, ingest_shard, transform_shard
from metamix.pipeline.sources import check_unique_ids, write_source_counts
from metamix.pipeline.stages import ApplyScorer, BatchStage, CountTokens, QuarantineIds
from metamix.pipeline.tokenizer import TOKEN_FILES_DIR, ensure_tokenizer
from metamix.scorers.base import Scorer
from metamix.scorers.registry import HEURISTIC_FAMILIES

CODE_VERSION = "1"


@dataclass
class StageRun:
    records: list[ShardRecord]
    report: StageReport
    #: ingest stages: shard name -> index of the input source it reads
    sources: dict[str, int] = field(default_factory=dict)


def open_pool(cfg: PipelineConfig, scorers: Sequence[Scorer] = ()) -> WorkerPool | Any:
    """The configured executor: a local process pool, or the Ray cluster (``RayPool``).
    The local pool's forkserver imports the built-in ``scorers``' modules once for all
    workers (user scorers' modules are left to the workers: their import may fail)."""
    if cfg.executor == "ray":
        from metamix.pipeline.ray_executor import RayPool

        return RayPool(cfg.ray)
    modules = [m for m in (type(s).__module__ for s in scorers) if m.startswith("metamix.scorers.")]
    if any(s.name in HEURISTIC_FAMILIES for s in scorers):
        # numba before the scorer modules: their kernels are then numba dispatchers from
        # the start, not the stand-ins of a process without numba (``scorers._jit``);
        # after them, the warm-up that loads those kernels once for all workers
        modules = ["numba", *modules, "metamix.scorers.warm_kernels"]
    return WorkerPool(cfg.n_workers, modules)


def _run_stage(cfg: PipelineConfig, console: Console, stage: str, tasks: list[ShardTask],
               fn: Any, total_docs: int | None, pool: WorkerPool) -> StageRun:
    """Skip shards already done, run the rest, drop stale outputs, write the manifest."""
    stage_dir = cfg.run_dir / stage
    manifest = StageManifest(stage_dir)
    manifest.adopt_legacy()
    started = time.monotonic()
    done, todo = manifest.split_done(tasks)
    skipped_docs = sum(r.stats.read for r in done.values())
    remaining = None if total_docs is None else max(total_docs - skipped_docs, 0)
    for rec in pool.map(fn, todo, label=stage, total_docs=remaining, console=console,
                        show_progress=cfg.progress and bool(todo),
                        docs_of=lambda r: r.stats.read):
        done[rec.shard] = rec
    records = [done[t.shard] for t in tasks]
    _remove_stale(stage_dir, {t.shard for t in tasks})
    task_hashes = [t.config_hash for t in tasks]
    totals = manifest.save_summary(records, {"stage": stage,
                                             "config_hash": json_hash([task_hashes])})
    report = StageReport(stage, len(tasks), len(tasks) - len(todo), totals,
                         time.monotonic() - started, sum(r.stats.read for r in done.values()
                                                         if r.shard in {t.shard for t in todo}))
    return StageRun(records, report)


def _remove_stale(stage_dir: Path, shards: set[str]) -> None:
    """Outputs of shards no longer in the plan (an input was removed) must not linger, nor
    temporary files of a killed run."""
    token_dir = stage_dir.parent / TOKEN_FILES_DIR / stage_dir.name
    record_dir = StageManifest(stage_dir).record_dir
    for path in [*stage_dir.glob(".*.tmp-*"), *record_dir.glob(".*.tmp-*"),
                 *token_dir.glob(".*.tmp-*")]:
        path.unlink()
    for path in stage_dir.glob("*.parquet"):
        if path.stem not in shards:
            path.unlink()
    for path in record_dir.glob("*.json"):
        if path.stem not in shards:
            path.unlink()
    for path in token_dir.glob("*.arrow"):
        if path.stem not in shards:
            path.unlink()
    quarantine_dir = stage_dir.parent / "quarantine"
    for path in quarantine_dir.glob(f"{stage_dir.name}-*.parquet"):
        if path.stem.removeprefix(f"{stage_dir.name}-") not in shards:
            path.unlink()


def _ingest(cfg: PipelineConfig, console: Console, stage: str,
            sources: Sequence[InputConfig], pool: WorkerPool) -> StageRun:
    """One stage over every source: its shards in source order, each read with its own
    source's mapping (``pipeline/sources.py``)."""
    base = Path(cfg.base_dir)
    plans = [plan_shards(cfg, inp) for inp in sources]
    # labels as the config names the inputs: relative paths stay relative
    relative = [not any(is_uri(p) or Path(p).is_absolute() for p in inp.paths)
                for inp in sources]
    kept_lists = inspect_sources(
        plans, sources, [(lambda p: os.path.relpath(p, base)) if rel else str
                         for rel in relative])
    tasks: list[ShardTask] = []
    owner: dict[str, int] = {}
    for k, (inp, shards, kept) in enumerate(zip(sources, plans, kept_lists, strict=True)):
        config_hash = json_hash([CODE_VERSION, inp.model_dump(mode="json"),
                                 [(f.name, f.path, str(f.type)) for f in kept]])
        for s in shards:
            name = f"part-{len(tasks):05d}"
            owner[name] = k
            tasks.append(ShardTask(
                stage=stage, shard=name, stage_dir=str(cfg.run_dir / stage),
                input_label=s.label_under(base) if relative[k] else s.label,
                input_fingerprint=input_fingerprint(s.path) + f":{s.start}",
                config_hash=config_hash, source=s, batch_size=cfg.score.batch_size,
                input_index=k))
    run = _run_stage(cfg, console, stage, tasks,
                     _IngestFn(list(zip(sources, kept_lists, strict=True))), None, pool)
    run.sources = owner
    return run


class _IngestFn:
    """Picklable closure over the input sources' configs for the process pool."""

    def __init__(self, sources: list[tuple[InputConfig, list[KeptField]]]) -> None:
        self.sources = sources

    def __call__(self, task: ShardTask) -> ShardRecord:
        inp, kept = self.sources[task.input_index]
        return ingest_shard(task, inp, kept)


def find_cross_shard_duplicates(shard_paths: list[Path]) -> dict[str, set[str]]:
    """Ids already owned by an earlier shard (listed order), per later shard.

    Shards are deduplicated internally at ingest; only a global pass sees ids repeated
    across files. Validation shards come first, so a training copy of a validation
    document is the one quarantined (no leakage into training).
    """
    if not shard_paths:
        return {}
    # imported here, not with the module: the pool's forkserver imports this module and
    # never runs this (0.1 s CPU)
    import duckdb

    from metamix.pipeline.selection.engine import register_object_stores

    con = duckdb.connect()
    con.execute("SET threads TO 2")
    register_object_stores(con, shard_paths)
    order = [[str(p), i] for i, p in enumerate(shard_paths)]
    con.execute("CREATE TEMP TABLE shard_order (filename VARCHAR, pos INTEGER)")
    con.executemany("INSERT INTO shard_order VALUES (?, ?)", order)
    rows = con.execute(
        """
        SELECT r.filename, r.id
        FROM read_parquet(?, filename = true) AS r JOIN shard_order USING (filename)
        QUALIFY row_number() OVER (PARTITION BY r.id ORDER BY shard_order.pos) > 1
        """,
        [[str(p) for p in shard_paths]],
    ).fetchall()
    dups: dict[str, set[str]] = {}
    for filename, doc_id in rows:
        dups.setdefault(filename, set()).add(doc_id)
    return dups


def _transform(cfg: PipelineConfig, console: Console, stage: str, inputs: list[ShardRecord],
               input_stage: str, stages_for: Any, config_parts: list[Any],
               pool: WorkerPool) -> StageRun:
    stage_dir = cfg.run_dir / stage
    tasks = []
    for rec in inputs:
        in_path = cfg.run_dir / input_stage / f"{rec.shard}.parquet"
        stages: list[BatchStage] = stages_for(in_path)
        dup_ids = stages[0].ids if isinstance(stages[0], QuarantineIds) else set()
        tasks.append(ShardTask(
            stage=stage, shard=rec.shard, stage_dir=str(stage_dir),
            input_label=f"{input_stage}/{rec.shard}.parquet",
            # the hash the shard's record vouches for (just written or just verified):
            # the driver does not read every shard again
            input_fingerprint=rec.outputs[f"{input_stage}/{rec.shard}.parquet"],
            config_hash=json_hash([CODE_VERSION, config_parts, sorted(dup_ids)]),
            input_path=str(in_path), stages=stages, batch_size=cfg.score.batch_size,
            max_batch_bytes=int(cfg.score.max_batch_mb * 1e6)))
    total = sum(r.stats.written for r in inputs)
    return _run_stage(cfg, console, stage, tasks, transform_shard, total, pool)


def run_score(cfg: PipelineConfig, console: Console) -> list[StageReport]:
    """Ingest and score the configured input; tokenize the validation split if any.

    The four stages share one worker pool (started only if a stage has work)."""
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    # Scorers first: a bad spec stops before any data is read, and a user scorer's module
    # is importable before the workers start.
    scorers = build_scorers(cfg.score.scorers, base_dir=Path(cfg.base_dir))
    for source in cfg.sources:
        _check_kept_names(source, scorers)
    with open_pool(cfg, scorers) as pool:
        reports = _score_stages(cfg, console, pool, scorers)
        if getattr(pool, "placement", None):  # Ray: which node ran each shard, per stage
            write_json_atomic(cfg.run_dir / "logs" / "ray_placement.json", pool.placement)
        return reports


def _check_kept_names(inp: InputConfig, scorers: list[Scorer]) -> None:
    """A kept user field may not take the name of a scorer's column."""
    for scorer in scorers:
        for f in scorer.output_schema():
            if f.name in inp.kept_columns():
                raise UserError(f"{inp.key}.keep_fields.{f.name}: scorer {scorer.name!r} writes a "
                                "column of that name; name the kept field another way "
                                f"({{my_{f.name}: {inp.kept_columns()[f.name]}}})")


def _checked(cfg: PipelineConfig, run: StageRun, inp: InputConfig, section: str) -> StageRun:
    check_stage_output(run.report, inp.max_quarantine_fraction,
                       f"{section}.max_quarantine_fraction", cfg.run_dir)
    return run


def _score_stages(cfg: PipelineConfig, console: Console, pool: WorkerPool,
                  scorers: list[Scorer]) -> list[StageReport]:
    reports = []
    # the strictest source's quarantine limit holds for the one ingest stage
    strict = min(cfg.sources, key=lambda s: s.max_quarantine_fraction)
    train = _checked(cfg, _ingest(cfg, console, "ingest", cfg.sources, pool), strict,
                     strict.key)
    reports.append(train.report)
    valid = (_checked(cfg, _ingest(cfg, console, "ingest_validation", [cfg.validation], pool),
                      cfg.validation, "validation") if cfg.validation else None)
    if valid:
        reports.append(valid.report)
    train_paths = [cfg.run_dir / "ingest" / f"{r.shard}.parquet" for r in train.records]
    valid_paths = ([cfg.run_dir / "ingest_validation" / f"{r.shard}.parquet"
                    for r in valid.records] if valid else [])
    if len(cfg.sources) > 1:
        check_unique_ids(cfg.sources, train.records, train_paths, train.sources)
    dups = find_cross_shard_duplicates(valid_paths + train_paths)

    shard_hashes = [h for r in train.records for h in r.outputs.values()]
    tok_path = ensure_tokenizer(cfg.tokenizer, Path(cfg.base_dir), cfg.resolve(cfg.out_dir) /
                                "_cache", train_paths, shard_hashes)
    run_tok = cfg.run_dir / "tokenizer.json"
    if not run_tok.is_file() or file_hash(run_tok) != file_hash(tok_path):
        with atomic_path(run_tok) as tmp:
            tmp.write_bytes(tok_path.read_bytes())
    tok_hash = file_hash(run_tok)
    # the fast encoder's check against ``tokenizers`` is remembered in the local cache
    check = None if is_uri(tok_path) else f"{tok_path}.check"

    def score_stages(path: Path) -> list[BatchStage]:
        return [QuarantineIds(dups.get(str(path), set()), "duplicate_id",
                              "id seen in an earlier shard or in the validation split"),
                CountTokens(str(run_tok), keep_ids=True, check_record=check),
                *[ApplyScorer(s) for s in scorers]]

    def validation_stages(path: Path) -> list[BatchStage]:
        return [QuarantineIds(dups.get(str(path), set()), "duplicate_id",
                              "id seen in an earlier validation shard"),
                CountTokens(str(run_tok), keep_ids=True, check_record=check)]

    scorer_params = [(s.name, s.params()) for s in scorers]
    scored = _transform(cfg, console, "scored", train.records, "ingest", score_stages,
                        [tok_hash, scorer_params], pool)
    reports.append(_checked(cfg, scored, strict, strict.key).report)
    if len(cfg.sources) > 1:
        counts = write_source_counts(cfg.run_dir, cfg.sources, train.sources, train.records,
                                     scored.records)
        for key, c in counts.items():
            console.print(f"  {key}: read {c['read']:,}, ingested {c['written']:,}, "
                          f"quarantined {sum(c['quarantined'].values()):,}, scored "
                          f"{c['scored']:,} ({', '.join(c['files'][:3])}"
                          f"{', ...' if len(c['files']) > 3 else ''})", highlight=False)
    dedup = run_dedup(cfg, console, scored.records, pool)
    if dedup is not None:
        reports.append(dedup)
    if valid:
        validation = _transform(cfg, console, "validation", valid.records,
                                "ingest_validation", validation_stages, [tok_hash], pool)
        reports.append(_checked(cfg, validation, cfg.validation, "validation").report)
    return reports


def scored_paths(cfg: PipelineConfig) -> list[Path]:
    paths = sorted((cfg.run_dir / "scored").glob("part-*.parquet"))
    if not paths:
        raise UserError(f"no scored shards in {cfg.run_dir / 'scored'}: run `metamix score` first")
    return paths


def proxy_inputs(cfg: PipelineConfig, command: str, need_validation: bool = True
                 ) -> tuple[list[Path], list[Path], Path]:
    """The scored train shards, validation shards and tokenizer that proxy training needs
    (Meta-rater and mixture search), or one clear error naming what to run first."""
    scored = sorted((cfg.run_dir / "scored").glob("part-*.parquet"))
    valid = sorted((cfg.run_dir / "validation").glob("part-*.parquet"))
    tokenizer = cfg.run_dir / "tokenizer.json"
    if not scored or not tokenizer.is_file():
        raise UserError(f"no scored shards in {cfg.run_dir / 'scored'}: run `metamix score`")
    if need_validation and not valid:
        raise UserError(f"{command} needs the held-out split: set `validation:` and rerun score")
    return scored, valid, tokenizer
