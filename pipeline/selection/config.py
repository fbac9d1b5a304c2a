"""The ``select:`` config section and where its weights come from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, PositiveInt, model_validator

from metamix.pipeline.selection.files import Normalization, SelectionError, load_weights_file


@dataclass(frozen=True)
class Cut:
    """How many documents a ranking keeps (the quota part of a ``SelectConfig``)."""

    mode: Literal["top_fraction", "token_budget"] = "top_fraction"
    fraction: float = 0.15
    per_domain: bool = False
    token_budget: int | None = None
    mixture_file: Path | None = None
    #: explicit tokens per domain (e.g. to match another selection); overrides the above
    budgets: tuple[tuple[str, int], ...] | None = None
    #: token budgets: keep each domain's spread of tokens over document lengths (quota.py)
    length_neutral: bool = False
    #: token budgets: keep each domain's spread of tokens over its sources (quota.py)
    source_neutral: bool = False


class SelectConfig(BaseModel):
    """The ``select:`` section of the pipeline config."""

    model_config = ConfigDict(extra="forbid")

    normalization: Normalization = Field(
        default="minmax",
        description="minmax: 5 x (s - min) / (max - min); percentile: 5 x percent rank")
    weights: dict[str, FiniteFloat] = Field(
        default_factory=dict,
        description="score column -> weight of its normalized score (negative: lower is better)")
    weights_file: Path | None = Field(
        default=None, description="weights JSON instead of weights (e.g. metarater/weights.json)")
    hard_filters: list[str] = Field(
        default_factory=list,
        description="scorer names whose non-null <name>_drop_reason drops a row")
    where: str | None = Field(
        default=None, min_length=1, description="DuckDB SQL condition on the scored columns "
        "(kept user fields too), e.g. lang = 'en'; rows it excludes count as dropped "
        "'where'")
    mode: Literal["top_fraction", "token_budget"] = Field(
        default="top_fraction",
        description="top_fraction: best share of documents; token_budget: tokens per domain")
    fraction: float = Field(0.15, gt=0, le=1,
                            description="share of the candidates kept in top_fraction mode")
    per_domain: bool = Field(
        default=False, description="top_fraction: the fraction applies within each domain")
    token_budget: PositiveInt | None = Field(
        default=None, description="tokens to keep (split by mixture_file, else by domain size)")
    mixture_file: Path | None = Field(
        default=None, description="domain weights JSON (mixture/weights.json) for token budgets")
    length_neutral: bool = Field(
        default=True, description="token_budget: each domain keeps its candidates' spread of "
        "tokens over document lengths (bands of doubling length), so weights that favour long "
        "documents cannot spend a budget on a few of them; false: plain first-fit by rank")
    source_neutral: bool = Field(
        default=False, description="token_budget: each domain keeps its candidates' share of "
        "tokens per source (with length_neutral: per source and length band), so the ranking "
        "picks documents inside each source and cannot move a domain's tokens to the sources "
        "that look like a fit target")
    drop_duplicates: bool = Field(
        default=True, description="drop documents the run's dedup pass did not keep (dups/: "
        "dup_exact_keep, dup_near_keep), counted as duplicate_exact / duplicate_near")
    duckdb_memory_limit: str = Field(
        "2GB", pattern=r"(?i)^\d+(\.\d+)?\s*(K|M|G|T)?i?B$",
        description="DuckDB memory cap (e.g. 2GB); above it DuckDB spills to disk")
    #: None = all cores, capped at 8 (window sorts stop scaling and memory per thread grows).
    duckdb_threads: PositiveInt | None = Field(
        default=None, description="DuckDB threads; null: all cores, at most 8")

    @model_validator(mode="after")
    def _check_consistency(self) -> SelectConfig:
        if bool(self.weights) == (self.weights_file is not None):
            raise ValueError("give exactly one of 'weights' (non-empty) or 'weights_file'")
        if len(set(self.hard_filters)) != len(self.hard_filters):
            raise ValueError(f"'hard_filters' lists a filter twice: {self.hard_filters}")
        if self.mode == "top_fraction" and (self.token_budget or self.mixture_file):
            raise ValueError("'token_budget'/'mixture_file' need mode: token_budget")
        if self.mode == "token_budget" and not (self.token_budget or self.mixture_file):
            raise ValueError("mode token_budget needs 'token_budget' and/or 'mixture_file'")
        return self

    def cut(self) -> Cut:
        return Cut(mode=self.mode, fraction=self.fraction, per_domain=self.per_domain,
                   token_budget=self.token_budget, mixture_file=self.mixture_file,
                   length_neutral=self.length_neutral, source_neutral=self.source_neutral)


def resolve_weights(cfg: SelectConfig) -> tuple[dict[str, float], Normalization, str]:
    """Return (weights, normalization, where the weights came from)."""
    if cfg.weights_file is None:
        return dict(cfg.weights), cfg.normalization, "select.weights"
    loaded = load_weights_file(cfg.weights_file)
    normalization = cfg.normalization
    if loaded.normalization is not None and loaded.normalization != cfg.normalization:
        if "normalization" in cfg.model_fields_set:
            raise SelectionError(
                f"weights file {cfg.weights_file}: fitted under normalization "
                f"'{loaded.normalization}' but select.normalization is '{cfg.normalization}'"
            )
        normalization = loaded.normalization
    return loaded.weights, normalization, str(cfg.weights_file)
