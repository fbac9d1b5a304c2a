"""Config scorer specs → scorer objects, with params checked against each constructor.

A scorer's typed keyword arguments are its schema: a misspelt threshold or a string where
a float belongs fails with the key path, before any data is read.
"""

from __future__ import annotations

import inspect
import typing
from typing import Any

from pydantic import ConfigDict, ValidationError, create_model

from metamix.base.errors import UserError
from metamix.pipeline.config import ScorerSpec
from metamix.scorers.base import Scorer
from metamix.scorers.registry import SCORERS


def build_scorers(specs: list[ScorerSpec], key: str = "score.scorers") -> list[Scorer]:
    import metamix.scorers.registry as _r
    getattr(_r, "load_builtin", lambda: None)()
    scorers: list[Scorer] = []
    seen: set[str] = set()
    for i, spec in enumerate(specs):
        cls = SCORERS.get(spec.name)
        if cls is None:
            known = ", ".join(sorted(SCORERS))
            raise UserError(f"{key}.{i}.name: unknown scorer {spec.name!r} (known: {known})")
        if spec.name in seen:
            raise UserError(f"{key}.{i}.name: scorer {spec.name!r} listed twice")
        seen.add(spec.name)
        params = _validated_params(cls, spec.params, f"{key}.{i}.params")
        scorers.append(cls(**params))
    return scorers


def _validated_params(cls: type[Scorer], params: dict[str, Any], key: str) -> dict[str, Any]:
    hints = typing.get_type_hints(cls.__init__)
    fields: dict[str, Any] = {}
    for name, p in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        default = ... if p.default is inspect.Parameter.empty else p.default
        fields[name] = (hints.get(name, Any), default)
    model = create_model(f"{cls.__name__}Params", __config__=ConfigDict(extra="forbid"),
                         **fields)
    try:
        validated = model.model_validate(params)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(part) for part in err["loc"])
            msg = "unknown parameter" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"{key}.{loc}: {msg}")
        raise UserError("\n".join(problems)) from None
    return {name: getattr(validated, name) for name in params}
