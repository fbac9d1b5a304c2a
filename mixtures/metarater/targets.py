"""What Meta-rater optimizes: a weighted list of evaluation targets, each split in two.

A selection is judged on text it was not drawn from: a reference text set (loss in
nats/token), multiple-choice/cloze items (the per-token log-likelihood of the correct
answer) or a metric the ``external`` trainer's own harness reports. The in-distribution
validation split is kept only as a representativeness diagnostic: a selection that differs
from a random sample must move away from it, so it never decides alone without a warning.

Every target is split by a hash of its item ids into a *fit* half, which the regressor learns
from, and a *report* half, which every verdict uses, so the method is never graded on the
numbers it fitted.

The specs stay light (the run config embeds them); ``evaluation`` reads and tokenizes them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from metamix.base.errors import UserError
from metamix.pipeline.config import InputConfig

HALVES = ("fit", "report")
#: how target families combine into the search objective (``families.combine``)
CombineKind = Literal["mean_z", "worst_z"]


class _Target(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$",
                      description="the target's name in reports and weights")
    weight: float = Field(1.0, ge=0,
                          description="its weight in the objective (0: reported, not optimized)")
    family: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_.-]+$",
        description="the kind of text it stands for; verdicts hold each family out of the "
        "fit in turn (null: a family of its own)")

    @property
    def family_name(self) -> str:
        return self.family or self.name


class TextTarget(_Target):
    """A reference text set in any input format the ingest reads; loss in nats/token."""

    kind: Literal["text"] = Field(
        default="text", description="text: loss on a text set; choice; validation; metric")
    input: InputConfig = Field(description="where the target texts are: the same keys as input")


class ChoiceTarget(_Target):
    """JSONL items ``{"context", "choices": [...], "answer": index, "id"?}``; the score is
    the proxy's per-token log-likelihood of the correct choice after the context."""

    kind: Literal["choice"] = "choice"
    path: str = Field(description="JSONL of {context, choices, answer} items")


class ValidationTarget(_Target):
    """The in-distribution validation split (a representativeness diagnostic)."""

    kind: Literal["validation"] = "validation"
    name: str = "validation"


class MetricTarget(_Target):
    """A metric the external trainer reports as ``metrics["<metric>/fit"]`` and
    ``metrics["<metric>/report"]``; negated when higher is better."""

    kind: Literal["metric"] = "metric"
    metric: str = Field(description="name the external trainer reports it under")
    higher_is_better: bool = Field(
        default=False, description="negate it, so lower is better like a loss")


TargetSpec = Annotated[TextTarget | ChoiceTarget | ValidationTarget | MetricTarget,
                       Field(discriminator="kind")]


def half_of(target: str, item_id: str, fit_fraction: float = 0.5) -> str:
    """``fit`` or ``report``, fixed by a hash of the target name and the item id."""
    digest = hashlib.sha256(f"{target}\0{item_id}".encode()).digest()
    return "fit" if int.from_bytes(digest[:8], "big") / 2**64 < fit_fraction else "report"


def group(target: str, half: str) -> str:
    return f"{target}/{half}"


def target_values(targets: list[TargetSpec], losses: Mapping[str, float],
                  metrics: Mapping[str, float] | None, half: str) -> dict[str, float]:
    """Each target's loss-like value (lower is better) on one half of a proxy run."""
    out: dict[str, float] = {}
    for target in targets:
        if isinstance(target, MetricTarget):
            key = f"{target.metric}/{half}"
            if not metrics or key not in metrics:
                raise UserError(f"metarater.targets.{target.name}: the trainer reported no "
                                f"metric {key!r}")
            value = float(metrics[key])
            out[target.name] = -value if target.higher_is_better else value
        else:
            out[target.name] = float(losses[group(target.name, half)])
    return out


def objective(targets: list[TargetSpec], values: Mapping[str, float]) -> float:
    """The weighted mean of the targets' values (targets of weight 0 are diagnostics)."""
    weighted = [(t.weight, values[t.name]) for t in targets if t.weight > 0]
    total = sum(w for w, _ in weighted)
    return sum(w * v for w, v in weighted) / total


def check_targets(targets: list[TargetSpec]) -> list[str]:
    """Warnings about the target list (errors are raised by the config validator)."""
    scoring = [t for t in targets if t.weight > 0]
    if all(isinstance(t, ValidationTarget) for t in scoring):
        return ["the only target is the in-distribution validation split: it rewards "
                "selections that look like a random sample of the corpus, so quality "
                "filters will look harmful; add a reference text or choice target"]
    return []
