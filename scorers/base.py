"""Scorer contracts.

A scorer family computes several named signals for a whole record batch at once, so the
stage runner never calls Python per document per signal. Quality filters are scorers whose
signals are also compared against published thresholds; the base class turns their ordered
drop rules into one ``<name>_drop_reason`` column (null = keep), mirroring datatrove's
named drop reasons, so selection can apply them as hard filters later.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa

Signals = dict[str, np.ndarray]

#: Is a higher value of a numeric column better, worse, or neither (counts, lengths, ids of
#: a language)? Meta-rater enters "lower" columns negated and never assumes "neutral" ones
#: are good.
Direction = Literal["higher", "lower", "neutral"]


class Scorer(ABC):
    """A family of per-document signals over the ``text`` column."""

    name: ClassVar[str]
    #: Columns the scorer reads from the batch; the runner checks they exist.
    input_columns: ClassVar[tuple[str, ...]] = ("text",)
    #: Direction of each numeric output column, declared next to the code that computes it.
    column_directions: ClassVar[dict[str, Direction]] = {}

    @abstractmethod
    def output_schema(self) -> pa.Schema:
        """Names and types of every column ``score`` returns, in order."""

    @abstractmethod
    def score(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        """Return one array per output column, aligned with the batch rows."""

    def directions(self) -> dict[str, Direction]:
        """Direction per numeric output column (override when columns depend on params)."""
        return dict(self.column_directions)

    def params(self) -> dict[str, Any]:
        """Constructor arguments as given (sklearn-style), for manifests and config hashes."""
        sig = inspect.signature(type(self).__init__)
        return {k: getattr(self, k) for k in sig.parameters if k != "self" and hasattr(self, k)}


class QualityFilter(Scorer):
    """A scorer with keep/drop decisions from ordered threshold rules.

    Subclasses implement ``signals`` (float/int/bool numpy arrays) and ``drop_rules``
    (ordered ``(reason, failed_mask)`` pairs). The first failing rule names the drop
    reason, as in datatrove where checks run in order and the first failure returns.
    """

    @property
    def drop_reason_column(self) -> str:
        return f"{self.name}_drop_reason"

    @abstractmethod
    def signal_schema(self) -> pa.Schema:
        """Schema of the numeric signal columns."""

    @abstractmethod
    def signals(self, batch: pa.RecordBatch) -> Signals:
        """Compute every signal for every row."""

    @abstractmethod
    def drop_rules(self, signals: Signals) -> list[tuple[str, np.ndarray]]:
        """Ordered (reason, boolean mask of rows failing the rule)."""

    def output_schema(self) -> pa.Schema:
        return self.signal_schema().append(pa.field(self.drop_reason_column, pa.string()))

    def score(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        sig = self.signals(batch)
        out: dict[str, pa.Array] = {
            f.name: pa.array(sig[f.name], type=f.type) for f in self.signal_schema()
        }
        out[self.drop_reason_column] = first_drop_reason(batch.num_rows, self.drop_rules(sig))
        return out


def first_drop_reason(n_rows: int, rules: list[tuple[str, np.ndarray]]) -> pa.Array:
    """Vectorized 'first failing rule wins'; null where every rule passes."""
    reasons = np.full(n_rows, None, dtype=object)
    undecided = np.ones(n_rows, dtype=bool)
    for reason, failed in rules:
        hit = undecided & np.asarray(failed, dtype=bool)
        reasons[hit] = reason
        undecided &= ~hit
    return pa.array(reasons, type=pa.string())
