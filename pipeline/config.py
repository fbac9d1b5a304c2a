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

from pydantic import BaseModel, ConfigDict, Field, field_validator

from metamix.base.hashing import json_hash
from metamix.base.storage import as_path, is_uri
from metamix.pipeline.selection.config import SelectConfig


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputConfig(Strict):
    """Where documents come from and which fields hold id/text/domain/source."""

    paths: list[str] = Field(min_length=1, description="files, globs or directories")
    format: Literal["auto", "jsonl", "parquet", "hf_disk", "hf_json", "hf_parquet"] = "auto"
    text_field: str = "text"
    id_field: str | None = Field(
        default="id", description="null: id = content hash of the text"
    )
    domain_field: str | None = "domain"
    domain_from_path: str | None = Field(
        default=None, description="regex with a (?P<domain>...) group, matched on the path"
    )
    domain: str | None = Field(default=None, description="one constant domain for all rows")
    source_field: str | None = "source"
    rows_per_shard: int = Field(default=50_000, gt=0, description="for hf_* inputs")
    max_doc_bytes: int = Field(
        default=5_000_000, gt=0, description="longer documents are quarantined as too_large "
        "(with their size): one huge document would otherwise set the memory of a worker")
    on_truncated: Literal["error", "quarantine"] = Field(
        default="error", description="a compressed JSONL file that ends early: stop with its "
        "byte offset, or keep the rows before it and quarantine the rest as one record")

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


class TokenizerConfig(Strict):
    """Byte-level BPE shared by n_tokens and the proxy trainers."""

    path: str | None = Field(default=None, description="an existing tokenizer.json to use")
    vocab_size: int = Field(default=8192, ge=260, le=262_144)
    sample_docs: int = Field(default=20_000, gt=0)
    min_frequency: int = Field(default=2, ge=1)


class ScorerSpec(Strict):
    name: str
    params: dict[str, Any] = Field(default_factory=dict)


def _default_scorers() -> list[ScorerSpec]:
    names = ["redpajama", "gopher_quality", "gopher_repetition", "c4", "fineweb"]
    return [ScorerSpec(name=n) for n in names]


class ScoreConfig(Strict):
    scorers: list[ScorerSpec] = Field(default_factory=_default_scorers)
    batch_size: int = Field(default=1000, gt=0, description="rows per record batch, at most")
    max_batch_mb: float = Field(
        default=4.0, gt=0,
        description="text MB per batch, at most: scorer memory grows with batch bytes, so "
                    "long documents get smaller batches and peak RSS stays bounded")


class ResourceRequest(Strict):
    """What one Ray task asks of the cluster (Ray's own resource names)."""

    num_cpus: float = Field(default=1, ge=0)
    num_gpus: float = Field(default=0, ge=0)
    memory_mb: int | None = Field(default=None, gt=0, description="Ray's memory resource")


def _default_proxy_resources() -> dict[str, ResourceRequest]:
    # the gpt proxy is the one that wants an accelerator on a cluster that has them
    return {"gpt": ResourceRequest(num_cpus=1, num_gpus=0)}


class RayConfig(Strict):
    """``executor: ray``: where the cluster is and what each task asks of it."""

    address: str = Field(
        default="auto", description="'auto' (the cluster `ray start` made on this machine), "
        "'host:port' of a head node, 'ray://host:10001' (Ray client), or 'local' (start a "
        "one-machine Ray inside this command)")
    num_cpus_per_task: float = Field(default=1, gt=0, description="per shard task")
    memory_mb_per_task: int | None = Field(default=None, gt=0)
    max_retries: int = Field(default=3, ge=0, description="re-runs of a shard task whose "
                             "worker or node died (Ray's system-failure retries)")
    proxy_resources: dict[str, ResourceRequest] = Field(
        default_factory=_default_proxy_resources,
        description="per proxy trainer (ngram, gpt, ...): resources of one sweep run; "
                    "trainers not listed ask for 1 CPU")
    env_vars: list[str] = Field(
        default_factory=lambda: ["AWS_*", "GOOGLE_*", "HF_*"],
        description="driver environment variables (globs) handed to every task, so object "
                    "store credentials reach workers on other machines")


class PipelineConfig(Strict):
    """The run-wide keys and the sections the pipeline reads; later layers take this."""

    run: str = Field(default="demo", pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$",
                     description="one folder name under out_dir (no '/', not '.' or '..')")
    out_dir: str = "out"
    seed: int = 0
    workers: int | None = Field(default=None, gt=0, description="default: number of cores")
    progress: bool = True
    executor: Literal["local", "ray"] = Field(
        default="local", description="local: a process pool of `workers`; ray: tasks on the "
        "Ray cluster named by `ray.address` (same outputs, byte for byte)")
    ray: RayConfig = Field(default_factory=RayConfig)
    input: InputConfig
    validation: InputConfig | None = None
    tokenizer: TokenizerConfig = Field(default_factory=TokenizerConfig)
    score: ScoreConfig = Field(default_factory=ScoreConfig)
    select: SelectConfig | None = None

    # Set by load_config so relative paths resolve against the config's directory.
    base_dir: str = Field(default=".", exclude=True)

    @property
    def run_dir(self) -> Path:
        return self.resolve(self.out_dir) / self.run

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
