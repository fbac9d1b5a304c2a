"""Target items → evaluation documents: read, validated, split into fit and report halves."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

import pyarrow.parquet as pq

from metamix.base.errors import UserError
from metamix.mixtures.metarater.targets import (
    ChoiceTarget,
    MetricTarget,
    TargetSpec,
    TextTarget,
    ValidationTarget,
    group,
    half_of,
)
from metamix.mixtures.proxies.evalsets import EvalDoc
from metamix.pipeline.config import PipelineConfig


def _text_docs(cfg: PipelineConfig, target: TextTarget) -> Iterable[tuple[str, str]]:
    from metamix.pipeline.ingest import read_canonical

    inp = target.input
    if not ({"domain", "domain_field", "domain_from_path"} & inp.model_fields_set):
        inp = inp.model_copy(update={"domain": target.name, "domain_field": None})
    counted = read_canonical(cfg, inp)
    for batch in counted.batches:
        yield from zip(batch.column("id").to_pylist(), batch.column("text").to_pylist(),
                       strict=True)
    if counted.quarantined:
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(counted.quarantined.items()))
        raise UserError(f"metarater.targets.{target.name}: {sum(counted.quarantined.values())} "
                        f"bad rows in its input ({reasons})")


def _choice_docs(cfg: PipelineConfig, target: ChoiceTarget) -> Iterable[EvalDoc]:
    path = cfg.resolve(target.path)
    if not path.is_file():
        raise UserError(f"metarater.targets.{target.name}.path: file not found: {path}")
    seen: set[str] = set()
    with open(path, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"{where}: not valid JSON ({exc.msg})") from None
            if not isinstance(item, dict):
                raise UserError(f"{where}: expected an object with context, choices, answer")
            context, choices, answer = item.get("context"), item.get("choices"), item.get("answer")
            if not isinstance(context, str) or not context.strip():
                raise UserError(f"{where}: 'context' must be a non-empty string")
            if (not isinstance(choices, list) or len(choices) < 2
                    or not all(isinstance(c, str) and c.strip() for c in choices)):
                raise UserError(f"{where}: 'choices' must list at least two non-empty strings")
            if not isinstance(answer, int) or isinstance(answer, bool) \
                    or not 0 <= answer < len(choices):
                raise UserError(f"{where}: 'answer' must be an index into 'choices'")
            item_id = str(item.get("id") or hashlib.sha256(line.encode()).hexdigest()[:16])
            if item_id in seen:
                raise UserError(f"{where}: duplicate item id {item_id!r}")
            seen.add(item_id)
            # a space joins context and answer as running text would
            yield EvalDoc(item_id, "", " " + choices[answer].strip(), context.rstrip())


def _validation_docs(validation_paths: list[Path]) -> Iterable[tuple[str, str]]:
    for path in validation_paths:
        table = pq.read_table(path, columns=["id", "text"])
        yield from zip(table.column("id").to_pylist(), table.column("text").to_pylist(),
                       strict=True)


def evaluation_docs(cfg: PipelineConfig, targets: list[TargetSpec],
                    validation_paths: list[Path], fit_fraction: float) -> list[EvalDoc]:
    """Every scored sequence of every target, grouped ``<target>/<half>``."""
    docs: list[EvalDoc] = []
    for target in targets:
        if isinstance(target, MetricTarget):
            continue
        if isinstance(target, ChoiceTarget):
            items = [EvalDoc(d.id, group(target.name, half_of(target.name, d.id, fit_fraction)),
                             d.text, d.context) for d in _choice_docs(cfg, target)]
        else:
            pairs = (_validation_docs(validation_paths) if isinstance(target, ValidationTarget)
                     else _text_docs(cfg, target))
            items = [EvalDoc(i, group(target.name, half_of(target.name, i, fit_fraction)), t)
                     for i, t in pairs]
        halves = {d.group for d in items}
        if len(halves) < 2:
            raise UserError(f"metarater.targets.{target.name}: needs items in both halves "
                            f"(fit and report); it has {len(items)}")
        docs.extend(items)
    return docs
