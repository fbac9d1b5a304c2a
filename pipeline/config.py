"""The pipeline's sections of the run config (input, tokenizer, score, select), validated
with pydantic.

Unknown keys and bad values fail with the key's dotted path (``score.scorers.2.params``),
so a typo in a config never silently falls back to a default. The whole-run config that
adds the Meta-rater, mixture and annotation sections is ``metamix.config.RunConfig``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from metamix.base.hashing import json_hash
from metamix.base.names import MAX_NAME, file_name, is_safe_name
from metamix.base.storage import as_path, is_uri
from metamix.pipeline.selection.config import SelectConfig
from metamix.scorers.base import Direction

#: Column names the pipeline writes itself: a kept user field may not take them.
RESERVED_COLUMNS = ("id", "text", "domain", "source", "n_tokens", "combined_score",
                    "selection_rank")
_COLUMN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputConfig(Strict):
    """Where documents come from and which fields hold id/text/domain/source.

    Every field mapping takes a dotted path (``meta.lang``) into nested JSON objects,
    Parquet structs and ``datasets`` struct features."""

    paths: list[str] = Field(min_length=1, description="files, globs or directories")
    format: Literal["auto", "jsonl", "parquet", "hf_disk", "hf_json", "hf_parquet"] = Field(
        default="auto", description="auto: by file suffix; a folder holding dataset_info.json "
        "and state.json is a save_to_disk dataset")
    text_field: str = Field(default="text", description="field holding the document text "
                            "(a dotted path reaches into nested fields: meta.body)")
    id_field: str | None = Field(
        default="id", description="null: id = content hash of the text"
    )
    domain_field: str | None = Field(
        default="domain", description="field holding the domain (e.g. meta.lang)")
    domain_from_path: str | None = Field(
        default=None, description="regex with a (?P<domain>...) group, matched on the path"
    )
    domain: str | None = Field(default=None, description="one constant domain for all rows")
    source_field: str | None = Field(
        default="source", description="at its default, documents without it take the file "
        "name; set explicitly, it must exist")
    keep_fields: list[str] | dict[str, str] = Field(
        default_factory=list, description="user fields passed through scored/ and selected/: "
        "a list of paths (meta.url becomes column meta_url) or {column: path}")
    score_fields: dict[str, Direction] = Field(
        default_factory=dict, description="kept numeric columns that are scores, with their "
        "direction (higher, lower, neutral): Meta-rater weighs them like a scorer's columns")
    max_quarantine_fraction: float = Field(
        default=0.5, ge=0, le=1, description="a stage that quarantines more than this share "
        "of the rows it reads stops the run with the top reasons")
    rows_per_shard: int = Field(default=50_000, gt=0, description="rows per ingest shard of a "
                                "datasets input (hf_disk, hf_json, hf_parquet)")
    max_doc_bytes: int = Field(
        default=5_000_000, gt=0, description="longer documents are quarantined as too_large "
        "(with their size): one huge document would otherwise set the memory of a worker")
    on_truncated: Literal["error", "quarantine"] = Field(
        default="error", description="a compressed JSONL file that ends early: stop with its "
        "byte offset, or keep the rows before it and quarantine the rest as one record")
    #: the config key this source sits under, for messages (``inputs[1]`` in ``inputs:``)
    _key: str = PrivateAttr(default="input")

    @property
    def key(self) -> str:
        return self._key

    @field_validator("domain_from_path")
    @classmethod
    def _has_domain_group(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            pattern = re.compile(v)
        except re.error as exc:
            raise ValueError(f"not a valid regex: {exc}") from None
        if "domain" not in pattern.groupindex:
            raise ValueError("needs a named group (?P<domain>...)")
        return v

    @field_validator("keep_fields")
    @classmethod
    def _kept_names(cls, v: list[str] | dict[str, str]) -> list[str] | dict[str, str]:
        pairs = _kept_pairs(v)
        names = [name for name, _ in pairs]
        for name, path in pairs:
            if not path or any(not part for part in path.split(".")):
                raise ValueError(f"{path!r}: not a field path (e.g. meta.url)")
            if not _COLUMN_NAME.match(name):
                raise ValueError(f"column name {name!r}: use letters, digits and _ (not "
                                 "starting with a digit), so SQL filters can name it")
            if name in RESERVED_COLUMNS:
                raise ValueError(f"column name {name!r} is one metamix writes; give another "
                                 f"({{my_{name}: {path}}})")
            if names.count(name) > 1:
                raise ValueError(f"column name {name!r} given twice")
        return v

    @model_validator(mode="after")
    def _score_fields_are_kept(self) -> InputConfig:
        unknown = sorted(set(self.score_fields) - set(self.kept_columns()))
        if unknown:
            raise ValueError(f"score_fields names columns not in keep_fields: {unknown} "
                             f"(kept columns: {sorted(self.kept_columns())})")
        return self

    def kept_columns(self) -> dict[str, str]:
        """Output column name → path of every kept user field."""
        return dict(_kept_pairs(self.keep_fields))


class SourceConfig(InputConfig):
    """One source of ``inputs:``: an input with its own paths, format, field mapping,
    domain and kept fields, and an optional id prefix."""

    id_prefix: str | None = Field(
        default=None, min_length=1, description="prepended to every id of this source (e.g. "
        "'web:'); an id found in two sources stops the run naming both files, so sources "
        "with overlapping ids need one")


def _kept_pairs(v: list[str] | dict[str, str]) -> list[tuple[str, str]]:
    if isinstance(v, dict):
        return list(v.items())
    return [(path.replace(".", "_"), path) for path in v]


class TokenizerConfig(Strict):
    """Byte-level BPE shared by n_tokens and the proxy trainers."""

    path: str | None = Field(default=None, description="an existing tokenizer.json to use")
    vocab_size: int = Field(default=8192, ge=260, le=262_144,
                            description="vocabulary of the BPE trained when path is null")
    sample_docs: int = Field(default=20_000, gt=0,
                             description="documents the BPE is trained on (a seeded sample)")
    min_frequency: int = Field(default=2, ge=1, description="pairs seen fewer times are not merged")


class ScorerSpec(Strict):
    """One scorer: a registered name (``metamix scorers``) or a class of your own."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(description="the scorer's name (its columns are prefixed by it)")
    params: dict[str, Any] = Field(default_factory=dict,
                                   description="the scorer's keyword arguments")
    import_: str | None = Field(
        default=None, alias="import",
        description="module of your own Scorer subclass (my_pkg.scorers, or "
                    "my_pkg.scorers:MyScorer); searched on sys.path, then in the folder "
                    "metamix runs from")


def _default_scorers() -> list[ScorerSpec]:
    names = ["redpajama", "gopher_quality", "gopher_repetition", "c4", "fineweb"]
    return [ScorerSpec(name=n) for n in names]


class ScoreConfig(Strict):
    scorers: list[ScorerSpec] = Field(
        default_factory=_default_scorers,
        description="scorer families to run, in order (see metamix scorers)")
    batch_size: int = Field(default=1000, gt=0, description="rows per record batch, at most")
    max_batch_mb: float = Field(
        default=4.0, gt=0,
        description="text MB per batch, at most: scorer memory grows with batch bytes, so "
                    "long documents get smaller batches and peak RSS stays bounded")


class ResourceRequest(Strict):
    """What one Ray task asks of the cluster (Ray's own resource names)."""

    num_cpus: float = Field(default=1, ge=0, description="CPUs one task reserves")
    num_gpus: float = Field(default=0, ge=0, description="GPUs one task reserves (fractions "
                            "share a GPU)")
    memory_mb: int | None = Field(default=None, gt=0, description="memory one task reserves "
                                  "(Ray's memory resource); null: none")


def _default_proxy_resources() -> dict[str, Any]:
    # the gpt proxy is the one that wants an accelerator on a cluster that has them
    return {"gpt": {"num_cpus": 1, "num_gpus": 0}}


class RayConfig(Strict):
    """``executor: ray``: where the cluster is and what each task asks of it."""

    address: str = Field(
        default="auto", description="'auto' (the cluster `ray start` made on this machine), "
        "'host:port' of a head node, 'ray://host:10001' (Ray client), or 'local' (start a "
        "one-machine Ray inside this command)")
    num_cpus_per_task: float = Field(default=1, gt=0, description="CPUs a shard task "
                                     "reserves (and the native thread pools it sizes)")
    memory_mb_per_task: int | None = Field(default=None, gt=0, description="memory a shard "
                                           "task reserves (Ray's memory resource); null: none")
    max_retries: int = Field(default=3, ge=0, description="re-runs of a shard task whose "
                             "worker or node died (Ray's system-failure retries)")
    proxy_resources: dict[str, ResourceRequest] = Field(
        default_factory=_default_proxy_resources, validate_default=True,
        description="per proxy trainer (ngram, gpt, ...): resources of one sweep run; "
                    "trainers not listed ask for 1 CPU")
    env_vars: list[str] = Field(
        default_factory=lambda: ["AWS_*", "GOOGLE_*", "HF_*"],
        description="driver environment variables (globs) handed to every task, so object "
                    "store credentials reach workers on other machines")


class DedupConfig(Strict):
    """Exact and near duplicates across all scored shards (``dups/``, read by ``select``)."""

    exact: bool = Field(default=True, description="normalized content hash (NFKC, "
                        "case-folded, whitespace collapsed)")
    near: bool = Field(default=True, description="MinHash LSH over word n-grams")
    threshold: float = Field(default=0.8, gt=0, lt=1,
                             description="Jaccard similarity of n-gram sets the LSH "
                                         "bands are tuned to")
    ngram: int = Field(default=5, ge=1, le=32, description="words per shingle")
    num_perm: int = Field(default=128, ge=8, le=1024, description="MinHash permutations")
    partitions: int = Field(
        default=16, ge=1, le=4096, description="the band and exact keys are split by hash "
        "into this many partitions on disk, each grouped into pairs by its own task: a "
        "task's data is the corpus's keys / partitions (spilled past the memory limit)")
    duckdb_memory_limit: str = Field(
        "1GB", pattern=r"(?i)^\d+(\.\d+)?\s*(K|M|G|T)?i?B$",
        description="DuckDB memory cap of each dedup task (e.g. 1GB); above it DuckDB "
        "spills to the work folder")
    duckdb_threads: int | None = Field(
        default=None, gt=0, description="DuckDB threads per dedup task; null: the cores of "
        "a worker (cores / workers)")
    work_dir: str | None = Field(
        default=None, description="folder of the stages' intermediate files and spill "
        "(shared by every node under Ray); null: <run>/_dedup, or a local temporary folder "
        "when the run folder is on an object store")
    keep_work_files: bool = Field(
        default=False, description="keep the intermediate files once dups/ is written "
        "(to measure them); false: removed")

    def output_fields(self) -> dict[str, Any]:
        """The keys that decide which documents are duplicates (the pass's record hash)."""
        return self.model_dump(mode="json", include={"exact", "near", "threshold", "ngram",
                                                     "num_perm"})


class PipelineConfig(Strict):
    """The run-wide keys and the sections the pipeline reads; later layers take this."""

    run: str = Field(default="demo",
                     description=f"one folder name under out_dir: at most {MAX_NAME} "
                     "characters from A-Z a-z 0-9 _ . -, not starting with '.' or '-'")
    out_dir: str = Field(
        default="out", description="parent folder of every run folder (and of _cache/)")
    seed: int = Field(
        default=0, description="seed of every random choice (samples, splits, proxies)")
    workers: int | None = Field(default=None, gt=0, description="default: number of cores")
    progress: bool = Field(default=True, description="progress bars and summary tables on stderr")
    executor: Literal["local", "ray"] = Field(
        default="local", description="local: a process pool of `workers`; ray: tasks on the "
        "Ray cluster named by `ray.address` (same outputs, byte for byte)")
    ray: RayConfig = Field(default_factory=RayConfig)
    input: InputConfig | None = Field(
        default=None, description="the documents, as one source (shorthand for a one-entry "
        "inputs: list)")
    inputs: list[SourceConfig] | None = Field(
        default=None, min_length=1, description="several sources, each with its own paths, "
        "format, field mapping (text/id/domain/source fields), domain and keep_fields; "
        "give input or inputs")
    validation: InputConfig | None = Field(
        default=None, description="held-out split (same keys as input): tokenized, never scored")
    tokenizer: TokenizerConfig = Field(
        default_factory=TokenizerConfig,
        description="byte-level BPE shared by n_tokens and the proxy trainers")
    score: ScoreConfig = Field(default_factory=ScoreConfig,
                               description="the quality scorers and their batch sizes")
    dedup: DedupConfig = Field(default_factory=DedupConfig,
                               description="exact and near duplicates across all shards")
    select: SelectConfig | None = Field(
        default=None, description="which documents ship: weights, filters, cut")

    # Set by load_config so relative paths resolve against the config's directory.
    base_dir: str = Field(default=".", exclude=True)

    @field_validator("run")
    @classmethod
    def _run_is_a_name(cls, value: str) -> str:
        if not is_safe_name(value):
            raise ValueError(f"{value[:40]!r}: one folder name of at most {MAX_NAME} characters "
                             "from A-Z a-z 0-9 _ . - (not starting with '.' or '-', not "
                             "ending with '.', not a device name such as CON)")
        return value

    @model_validator(mode="after")
    def _one_input_form(self) -> PipelineConfig:
        if (self.input is None) == (self.inputs is None):
            raise ValueError("give exactly one of 'input' (one source) or 'inputs' (a list "
                             "of sources)")
        directions: dict[str, tuple[str, str]] = {}
        for i, source in enumerate(self.inputs or []):
            source._key = f"inputs[{i}]"
            for column, direction in source.score_fields.items():
                other = directions.setdefault(column, (direction, source.key))
                if other[0] != direction:
                    raise ValueError(f"{source.key}.score_fields.{column}: {direction} here "
                                     f"but {other[0]} in {other[1]}")
        return self

    @property
    def sources(self) -> list[InputConfig]:
        """Every input source, in config order (``input:`` is the one-source form)."""
        return [self.input] if self.input is not None else list(self.inputs or [])

    def kept_columns(self) -> dict[str, str]:
        """Output column → path of every kept user field of any source (the first source
        naming a column gives the path shown)."""
        out: dict[str, str] = {}
        for source in self.sources:
            for column, path in source.kept_columns().items():
                out.setdefault(column, path)
        return out

    def score_fields(self) -> dict[str, Direction]:
        """Kept columns that are scores, with their direction, over every source."""
        out: dict[str, Direction] = {}
        for source in self.sources:
            out.update(source.score_fields)
        return out

    @property
    def run_dir(self) -> Path:
        return self.resolve(self.out_dir) / file_name(self.run)

    @property
    def n_workers(self) -> int:
        return self.workers or os.cpu_count() or 1

    def resolve(self, path: str) -> Path:
        """A config path: relative ones resolve against ``base_dir``; an object-store URI
        (``s3://bucket/prefix``) becomes a ``UPath``, which the run-folder code uses like a
        ``Path``."""
        if is_uri(path):
            return as_path(path)
        p = Path(path).expanduser()
        return p if p.is_absolute() else Path(self.base_dir) / p

    def section_hash(self, *sections: str) -> str:
        """Hash of the named config sections, for manifests: a changed section reruns its stage."""
        return json_hash(self.model_dump(mode="json", include=set(sections)))
