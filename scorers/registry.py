"""Name → scorer class, the names used in config files (``score.scorers[].name``)."""

from __future__ import annotations

from scorers.base import Scorer

SCORERS: dict[str, type[Scorer]] = {}


def register(cls: type[Scorer]) -> type[Scorer]:
    """Class decorator: make a scorer available to configs under ``cls.name``."""
    if cls.name in SCORERS:
        raise ValueError(f"scorer name {cls.name!r} registered twice")
    SCORERS[cls.name] = cls
    return cls
