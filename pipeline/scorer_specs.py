"""Config scorer specs → scorer objects, with params checked against each constructor.

A scorer's typed keyword arguments are its schema: a misspelt threshold or a string where
a float belongs fails with the key path, before any data is read.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import typing
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, ValidationError, create_model

from metamix.base.errors import UserError
from metamix.pipeline.config import ScorerSpec
from metamix.scorers.base import Scorer
from metamix.scorers.registry import SCORERS


def build_scorers(specs: list[ScorerSpec], key: str = "score.scorers",
                  base_dir: Path | None = None) -> list[Scorer]:
    """Scorer objects for ``specs``; ``base_dir`` (the folder relative config paths resolve
    against) is where a user scorer's module is looked for after ``sys.path``."""
    import metamix.scorers.registry as _r
    getattr(_r, "load_builtin", lambda: None)()
    scorers: list[Scorer] = []
    seen: set[str] = set()
    for i, spec in enumerate(specs):
        if spec.import_ is not None:
            cls = import_scorer(spec, f"{key}.{i}.import", base_dir or Path.cwd())
        else:
            cls = SCORERS.get(spec.name)
        if cls is None:
            known = ", ".join(sorted(SCORERS))
            raise UserError(f"{key}.{i}.name: unknown scorer {spec.name!r} (known: {known}; "
                            "a scorer of your own needs import: my_pkg.my_module)")
        if spec.name in seen:
            raise UserError(f"{key}.{i}.name: scorer {spec.name!r} listed twice")
        seen.add(spec.name)
        params = _validated_params(cls, spec.params, f"{key}.{i}.params")
        scorers.append(cls(**params))
    return scorers


def import_scorer(spec: ScorerSpec, key: str, base_dir: Path) -> type[Scorer]:
    """The ``Scorer`` subclass ``spec.import_`` names: ``module:Class``, or a module holding
    exactly one subclass whose ``name`` is ``spec.name``."""
    assert spec.import_ is not None
    module_name, _, class_name = spec.import_.partition(":")
    if str(base_dir) not in sys.path:
        # appended, never first: a user module must not shadow an installed package; worker
        # processes are spawned with this sys.path
        sys.path.append(str(base_dir))
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise UserError(f"{key}: no module {module_name!r} ({exc}); install it or put it on "
                        f"PYTHONPATH or in {base_dir}") from None
    except Exception as exc:  # the user's module failed while importing
        raise UserError(f"{key}: importing {module_name!r} failed: "
                        f"{type(exc).__name__}: {exc}") from None
    if class_name:
        cls = getattr(module, class_name, None)
        if cls is None:
            raise UserError(f"{key}: module {module_name!r} has no class {class_name!r}")
        candidates = [cls]
    else:
        candidates = [c for c in vars(module).values()
                      if isinstance(c, type) and issubclass(c, Scorer)
                      and getattr(c, "name", None) == spec.name]
        if not candidates:
            found = sorted(f"{c.__name__} (name {getattr(c, 'name', None)!r})"
                           for c in vars(module).values() if isinstance(c, type)
                           and issubclass(c, Scorer) and c.__module__ == module.__name__)
            raise UserError(f"{key}: module {module_name!r} has no Scorer subclass with name "
                            f"{spec.name!r} (Scorer subclasses there: "
                            f"{', '.join(found) or 'none'})")
    cls = candidates[0]
    if not (isinstance(cls, type) and issubclass(cls, Scorer)):
        raise UserError(f"{key}: {spec.import_} is not a subclass of "
                        "metamix.scorers.base.Scorer")
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(cls.__abstractmethods__))
        raise UserError(f"{key}: {spec.import_} does not implement {missing}")
    if getattr(cls, "name", None) != spec.name:
        raise UserError(f"{key}: class {cls.__name__} has name "
                        f"{getattr(cls, 'name', None)!r}, the config says {spec.name!r}")
    return cls


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
