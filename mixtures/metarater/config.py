"""The ``metarater:`` config section (pydantic, unknown keys rejected).

Kept free of heavy imports at module level: ``metamix.config`` imports this module to embed
the section in ``RunConfig`` whenever a config is read.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator, model_validator

from metamix.base.hashing import json_hash


class ProxyConfig(BaseModel):
    """Which proxy trainer every run uses, and its constructor parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trainer: Literal["ngram", "gpt", "external"] = "ngram"
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _params_accepted(self) -> ProxyConfig:
        from metamix.mixtures.proxies import make_trainer  # lazy: see the module docstring

        try:
            make_trainer(self.trainer, self.params)
        except TypeError as exc:
            raise ValueError(f"params not accepted by the {self.trainer} trainer: {exc}") from None
        return self


class MetaraterConfig(BaseModel):
    """Meta-rater weight learning: K proxy runs on Dirichlet-weighted selections."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scores: list[str] | None = Field(
        default=None, description="null: every numeric score column that varies")
    lower_is_better: list[str] = Field(
        default_factory=list, description="scores whose weight is applied negated")
    hard_filters: list[str] = Field(default_factory=list)
    normalization: Literal["minmax", "percentile"] = "minmax"
    fraction: float = Field(0.15, gt=0, le=1, description="top fraction kept per weight vector")
    per_domain: bool = False
    k: int = Field(128, ge=4, description="Dirichlet weight vectors (proxy runs)")
    alpha: float = Field(1.0, gt=0, description="symmetric Dirichlet concentration")
    proxy: ProxyConfig = Field(default_factory=ProxyConfig)
    token_budget: PositiveInt | Literal["auto"] | None = Field(
        default="auto", description="training tokens per proxy run (a cap; null = the whole "
        "selection); auto: the auto_budget_quantile of the Dirichlet selections' token counts, "
        "so most runs train on exactly as many tokens and the seed picks which documents")
    auto_budget_quantile: float = Field(0.1, ge=0, le=1)
    target: str = Field("mean", description="'mean' (token-weighted) or a validation domain")
    n_search_samples: int = Field(200_000, ge=1_000, le=10_000_000)
    top_k: PositiveInt = 128
    folds: int = Field(5, ge=2)
    seed_repeats: int = Field(3, ge=1, description="seeds per repeated config (1 = off)")
    seed_repeat_configs: int = Field(3, ge=0)
    baselines: bool = True
    regressor_params: dict[str, Any] = Field(default_factory=dict)
    retries: int = Field(1, ge=0)
    workers: PositiveInt | None = Field(default=None, description="null: the run's workers")
    seed: int | None = Field(default=None, description="null: the run's seed")

    @field_validator("scores")
    @classmethod
    def _unique_scores(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and (not v or len(set(v)) != len(v)):
            raise ValueError("must be a non-empty list without repeats")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> MetaraterConfig:
        if self.scores is not None:
            unknown = sorted(set(self.lower_is_better) - set(self.scores))
            if unknown:
                raise ValueError(f"lower_is_better names scores not in 'scores': {unknown}")
        return self

    def sweep_key(self, *parts: Any) -> str:
        """Hash of everything that changes a proxy run's outcome (not k/search/baselines)."""
        relevant = self.model_dump(mode="json", include={
            "normalization", "fraction", "per_domain", "proxy", "token_budget",
            "auto_budget_quantile", "hard_filters", "lower_is_better"})
        return json_hash([relevant, *parts], length=12)
