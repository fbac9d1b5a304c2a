"""The ``mix:`` config section (pydantic, unknown keys rejected) for ``run_mix``.

Kept free of heavy imports at module level so ``metamix.config`` can embed it in RunConfig.
Defaults are sized for the bundled demo (6 domains, ~15.7M tokens): 32 sampled proxy runs
(the MDE paper finds ~25 suffice), 2M training tokens each, 2 BO rounds of 4, a few minutes
on 2 cores with the n-gram proxy.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator

from metamix.base.hashing import json_hash
from metamix.mixtures.metarater.config import ProxyConfig

SURROGATE_NAMES = ("linear", "loglinear", "lightgbm", "gp", "ensemble")


class MixConfig(BaseModel):
    """Domain-mixture search: data experts, RegMix sampling, surrogates, RegMix search + BO."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    proxy: ProxyConfig = Field(default_factory=ProxyConfig,
                               description="trainer of every mixture run and of the experts")
    proxy_tokens: PositiveInt = Field(
        2_000_000, description="training tokens per proxy run; domain d gets weight_d x this")
    expert_tokens: PositiveInt | None = Field(
        default=None, description="training tokens per data expert (null: proxy_tokens, "
        "or all of a smaller domain)")
    target_tokens: PositiveInt | None = Field(
        default=None, description="token budget of the final job (emitted as total_tokens); "
        "null: target_fraction x the available tokens")
    target_fraction: float = Field(
        0.5, gt=0, le=1,
        description="target tokens as a share of the available ones (no target_tokens)")
    max_epochs: float = Field(
        1.0, gt=0, description="cap: weight_d x target_tokens <= max_epochs x available_d. "
        "1 = no repetition, which is what token-budget selection can deliver")
    n_runs: int = Field(32, ge=6, description="RegMix-sampled training mixtures")
    objective: Literal["equal", "tokens"] | dict[str, float] = Field(
        "equal", description="weights of the validation-domain losses in the objective: "
        "equal, tokens (proportional to validation tokens) or {domain: weight}")
    surrogates: list[Literal["linear", "loglinear", "lightgbm", "gp", "ensemble"]] = Field(
        default_factory=lambda: ["linear", "loglinear", "lightgbm", "gp"],
        description="each is K-fold evaluated with and without MDE features")
    folds: int = Field(5, ge=2, description="K of the surrogates' K-fold comparison")
    mde_tokens_per_domain: PositiveInt | None = Field(
        4096, description="validation tokens per domain for surrogate MDE inputs (null: all)")
    n_candidates: int = Field(100_000, ge=1_000, le=5_000_000,
                              description="mixtures the surrogate scores in the RegMix search")
    top_k: PositiveInt = Field(
        default=100, description="best predicted mixtures averaged into the RegMix choice")
    bo_rounds: int = Field(2, ge=0, description="BO rounds whose proposals get real proxy runs")
    bo_batch: PositiveInt = Field(4, description="q: BO proposals per round")
    evaluate_final: bool = Field(
        default=True, description="train a proxy on the chosen mixture and report its actual loss")
    megatron_prefix: str = Field(
        "data/megatron", description="directory of Megatron indexed datasets; domain d is "
        "<megatron_prefix>/<d>_text_document (preprocess_data.py --output-prefix <dir>/<d>)")
    retries: int = Field(1, ge=0, description="retries of a failed proxy run")
    workers: PositiveInt | None = Field(default=None, description="null: the run's workers")
    seed: int | None = Field(default=None, description="null: the run's seed")

    @field_validator("surrogates")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if not v or len(set(v)) != len(v):
            raise ValueError("must be a non-empty list without repeats")
        return v

    @field_validator("objective")
    @classmethod
    def _weights_ok(cls, v: str | dict[str, float]) -> str | dict[str, float]:
        if isinstance(v, dict) and (not v or any(w < 0 for w in v.values())
                                    or sum(v.values()) <= 0):
            raise ValueError("domain weights must be >= 0 with a positive sum")
        return v

    def sweep_key(self, train_cache: str, valid_cache: str, seed: int) -> str:
        """What makes two proxy runs comparable: data, trainer, per-run budget, seed."""
        return json_hash([train_cache, valid_cache, seed, self.proxy.trainer,
                          self.proxy.params, self.proxy_tokens])

    def config_hash(self) -> str:
        return json_hash(self.model_dump(mode="json"))
