"""The ``metarater:`` config section (pydantic, unknown keys rejected).

Kept free of heavy imports at module level: ``metamix.config`` imports this module to embed
the section in ``RunConfig`` whenever a config is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator, model_validator

from metamix.base.hashing import json_hash
from metamix.mixtures.metarater.targets import CombineKind, TargetSpec, ValidationTarget


class ProxyConfig(BaseModel):
    """Which proxy trainer every run uses, and its constructor parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trainer: Literal["ngram", "gpt", "external"] = Field(
        default="ngram",
        description="ngram (seconds), gpt (a small transformer) or external (your command)")
    params: dict[str, Any] = Field(default_factory=dict,
                                   description="the trainer's keyword arguments")

    @model_validator(mode="after")
    def _params_accepted(self) -> ProxyConfig:
        # names only, read from the trainer's source: importing the gpt trainer (torch)
        # would cost every command that reads a config seconds
        from metamix.mixtures.proxies import check_trainer_params

        try:
            check_trainer_params(self.trainer, self.params)
        except TypeError as exc:
            raise ValueError(f"params not accepted by the {self.trainer} trainer: {exc}") from None
        return self


Direction = Literal["higher", "lower", "neutral"]


class MetaraterConfig(BaseModel):
    """Meta-rater weight learning: K proxy runs on Dirichlet-weighted selections, each
    trained on the same per-domain tokens and judged on targets outside the corpus."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    targets: list[TargetSpec] = Field(
        default_factory=lambda: [ValidationTarget()],
        description="evaluation sets and their weights in the objective (lower is better)")
    fit_fraction: float = Field(0.5, gt=0, lt=1, description="share of each target's items "
                                "in the fit half; the rest is the report half")
    scores: list[str] | None = Field(
        default=None, description="null: every numeric score column that varies")
    directions: dict[str, Direction] = Field(
        default_factory=dict, description="override a scorer's declared direction per column")
    hard_filters: list[str] = Field(
        default_factory=list,
        description="scorer drop reasons applied before every run's selection")
    where: str | None = Field(
        default=None, min_length=1,
        description="SQL condition every run selects within (as select.where; give both)")
    normalization: Literal["minmax", "percentile"] = Field(
        default="minmax", description="how score columns are normalized (as select.normalization)")
    fraction: float = Field(0.15, gt=0, le=1, description="tokens per run as a fraction of "
                            "the hard-filter survivors' tokens (unless token_budget is set)")
    token_budget: PositiveInt | None = Field(
        default=None, description="tokens per proxy run (overrides fraction)")
    mixture_file: Path | None = Field(
        default=None, description="per-domain token shares of every run (a mixture file); "
        "null: the corpus's own shares, so the domain mix stays intact")
    share_tolerance: float = Field(
        0.02, gt=0, le=1, description="largest gap between a run's domain share and the "
        "configured one; a run off by more is an error (small corpora need more)")
    k: int = Field(128, ge=4, description="Dirichlet weight vectors (proxy runs)")
    alpha: float = Field(1.0, gt=0, description="symmetric Dirichlet concentration")
    proxy: ProxyConfig = Field(default_factory=ProxyConfig,
                               description="the proxy trainer of every run")
    n_search_samples: int = Field(
        200_000, ge=1_000, le=10_000_000,
        description="weight vectors the fitted regressor scores in the search")
    top_k: PositiveInt = Field(
        default=128, description="best predicted weight vectors averaged into the learned weights")
    folds: int = Field(5, ge=2, description="K of the regressors' K-fold evaluation")
    random_draws: int = Field(16, ge=2, description="independent random selections (their "
                              "spread is the noise every gap is measured in)")
    objective: CombineKind = Field(
        default="mean_z", description="how target families combine into the search "
        "objective: mean_z (mean of the families' z-scores against random) or worst_z "
        "(the worst family)")
    shrinkage: list[float] = Field(
        default_factory=lambda: [0.0, 0.25, 0.5, 0.75],
        description="amounts the fitted weights are shrunk towards equal weights by (1.0, "
        "equal weights, is always a candidate); the held-out families choose")
    length_neutral: bool = Field(
        default=True, description="runs keep each domain's spread of tokens over document "
        "lengths (as select.length_neutral; give both)")
    source_neutral: bool = Field(
        default=False, description="runs keep each domain's share of tokens per source (as "
        "select.source_neutral; give both)")
    bootstrap: int = Field(2000, ge=100, description="bootstrap resamples of the random "
                           "draws behind every gap's interval")
    seed_repeats: int = Field(1, ge=1, description="seeds per repeated config (1 = off; "
                              "the ngram proxy is deterministic given its documents)")
    seed_repeat_configs: int = Field(
        3, ge=0, description="runs repeated with other seeds (when seed_repeats > 1)")
    baselines: bool = Field(
        default=True, description="also run equal, single-score and random selections")
    regressor_params: dict[str, Any] = Field(
        default_factory=dict, description="LightGBM parameters of the loss regressor")
    retries: int = Field(1, ge=0, description="retries of a failed proxy run")
    workers: PositiveInt | None = Field(default=None, description="null: the run's workers")
    seed: int | None = Field(default=None, description="null: the run's seed")

    @field_validator("shrinkage")
    @classmethod
    def _shrinkage_amounts(cls, v: list[float]) -> list[float]:
        if not v or len(set(v)) != len(v) or not all(0 <= a < 1 for a in v):
            raise ValueError("must list distinct amounts in [0, 1)")
        return sorted(v)

    @field_validator("scores")
    @classmethod
    def _unique_scores(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and (not v or len(set(v)) != len(v)):
            raise ValueError("must be a non-empty list without repeats")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> MetaraterConfig:
        names = [t.name for t in self.targets]
        if not names:
            raise ValueError("targets: give at least one target")
        if len(set(names)) != len(names):
            raise ValueError(f"targets: names must be unique, got {names}")
        if not any(t.weight > 0 for t in self.targets):
            raise ValueError("targets: at least one target needs a weight > 0")
        if self.scores is not None:
            unknown = sorted(set(self.directions) - set(self.scores))
            if unknown:
                raise ValueError(f"directions names scores not in 'scores': {unknown}")
        return self

    def sweep_key(self, *parts: Any) -> str:
        """Hash of everything that changes a proxy run's outcome (not k/search/baselines)."""
        relevant = self.model_dump(mode="json", include={
            "targets", "fit_fraction", "normalization", "fraction", "token_budget",
            "mixture_file", "proxy", "hard_filters", "directions", "length_neutral",
            # unset: the keys of earlier sweeps hold
            *(["where"] if self.where else []),
            *(["source_neutral"] if self.source_neutral else [])})
        return json_hash([relevant, *parts], length=12)
