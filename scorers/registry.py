"""Name → scorer class, the names used in config files (``score.scorers[].name``)."""

from __future__ import annotations

from metamix.scorers.base import Scorer

SCORERS: dict[str, type[Scorer]] = {}


def register(cls: type[Scorer]) -> type[Scorer]:
    """Class decorator: make a scorer available to configs under ``cls.name``."""
    if cls.name in SCORERS:
        raise ValueError(f"scorer name {cls.name!r} registered twice")
    SCORERS[cls.name] = cls
    return cls


BUILTIN_MODULES: tuple[str, ...] = (
    "metamix.scorers.redpajama",
    "metamix.scorers.gopher_quality",
    "metamix.scorers.gopher_repetition",
    "metamix.scorers.c4",
    "metamix.scorers.fineweb",
    "metamix.scorers.model_based.fasttext_quality",
    "metamix.scorers.model_based.dsir",
    "metamix.scorers.model_based.ngram_perplexity",
    "metamix.scorers.model_based.language_id",
    "metamix.scorers.prrc.raters",
    "metamix.scorers.prrc.raters_hf",
)

#: The heuristic families (no model files): what the datatrove speed/agreement benches run.
HEURISTIC_FAMILIES: tuple[str, ...] = (
    "redpajama", "gopher_quality", "gopher_repetition", "c4", "fineweb",
)


def load_builtin() -> dict[str, type[Scorer]]:
    """Import the built-in families so their ``@register`` runs; returns ``SCORERS``.

    Imported lazily (not at module import) because the family modules import this one.
    """
    import importlib

    for module in BUILTIN_MODULES:
        importlib.import_module(module)
    return SCORERS
