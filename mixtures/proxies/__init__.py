"""Proxy trainers: small models whose validation loss ranks candidate training sets.

``make_trainer("ngram", {"order": 3})`` builds one from a config; every trainer shares
the ``ProxyTrainer.fit_evaluate(TrainingData, ValidationSet) -> ProxyResult`` interface.

Reading a config checks a trainer's parameter names (``check_trainer_params``) from its
source, without importing it: the gpt trainer imports torch, and every command reads the
config. The names below load on first use too (PEP 562), so importing this package is free.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from metamix.mixtures.proxies.base import (
        ProxyError,
        ProxyResult,
        ProxyTrainer,
        TrainingData,
        ValidationSet,
        ValidationTokens,
        losses_from_logprobs,
    )
    from metamix.mixtures.proxies.tokens import (
        TokenizedCorpus,
        build_token_cache,
        load_token_cache,
    )

TRAINERS = ("ngram", "gpt", "external")
#: trainer name -> (module, class)
_TRAINER_CLASSES = {
    "ngram": ("metamix.mixtures.proxies.ngram", "NgramTrainer"),
    "gpt": ("metamix.mixtures.proxies.gpt", "GPTTrainer"),
    "external": ("metamix.mixtures.proxies.external", "ExternalTrainer"),
}
_LAZY = {
    **dict.fromkeys(("ProxyError", "ProxyResult", "ProxyTrainer", "TrainingData",
                     "ValidationSet", "ValidationTokens", "losses_from_logprobs"), "base"),
    **dict.fromkeys(("TokenizedCorpus", "build_token_cache", "load_token_cache"), "tokens"),
}

__all__ = [
    "TRAINERS",
    "ProxyError",
    "ProxyResult",
    "ProxyTrainer",
    "TokenizedCorpus",
    "TrainingData",
    "ValidationSet",
    "ValidationTokens",
    "build_token_cache",
    "check_trainer_params",
    "load_token_cache",
    "losses_from_logprobs",
    "make_trainer",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_trainer(name: str, params: dict[str, Any] | None = None) -> ProxyTrainer:
    """Instantiate a trainer by name; unknown parameters raise TypeError naming them."""
    params = dict(params or {})
    if name == "ngram":
        from metamix.mixtures.proxies.ngram import NgramTrainer
        return NgramTrainer(**params)
    if name == "gpt":
        from metamix.mixtures.proxies.gpt import GPTTrainer
        return GPTTrainer(**params)
    if name == "external":
        from metamix.mixtures.proxies.external import ExternalTrainer
        return ExternalTrainer(**params)
    raise ValueError(f"unknown proxy trainer {name!r}; expected one of {list(TRAINERS)}")


def check_trainer_params(name: str, params: dict[str, Any]) -> None:
    """Raise TypeError, as the constructor would, for parameter names the trainer does not
    take (its constructor only stores them, so names are all there is to check early)."""
    if name not in _TRAINER_CLASSES:
        raise ValueError(f"unknown proxy trainer {name!r}; expected one of {list(TRAINERS)}")
    accepted, required, any_keyword = _constructor_signature(name)
    unknown = sorted(set(params) - set(accepted))
    if unknown and not any_keyword:
        raise TypeError(f"{_TRAINER_CLASSES[name][1]}() got unexpected keyword arguments "
                        f"{unknown}; it takes {list(accepted)}")
    missing = sorted(set(required) - set(params))
    if missing:
        raise TypeError(f"{_TRAINER_CLASSES[name][1]}() missing required arguments {missing}")


@cache
def _constructor_signature(name: str) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    """(keyword parameters, those without a default, whether it takes ``**kwargs``) of the
    trainer's ``__init__``, read from the imported class if loaded, else from its source."""
    module_name, class_name = _TRAINER_CLASSES[name]
    if module_name in sys.modules:
        import inspect

        sig = inspect.signature(getattr(sys.modules[module_name], class_name).__init__)
        params = [p for p in list(sig.parameters.values())[1:]
                  if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        return (tuple(p.name for p in params),
                tuple(p.name for p in params if p.default is p.empty),
                any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()))
    spec = importlib.util.find_spec(module_name)
    assert spec is not None and spec.origin is not None
    with open(spec.origin, encoding="utf-8") as fh:
        tree = ast.parse(fh.read(), spec.origin)
    init = next(node for cls in tree.body if isinstance(cls, ast.ClassDef)
                and cls.name == class_name for node in cls.body
                if isinstance(node, ast.FunctionDef) and node.name == "__init__")
    args = init.args
    positional = [*args.posonlyargs, *args.args][1:]
    first_default = len(positional) - len(args.defaults)
    names = [a.arg for a in positional] + [a.arg for a in args.kwonlyargs]
    required = [a.arg for i, a in enumerate(positional) if i < first_default]
    required += [a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)
                 if d is None]
    return tuple(names), tuple(required), args.kwarg is not None
