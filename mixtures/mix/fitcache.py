"""The last fit of ``mix suggest``/``mix optimize``, kept beside the runs table for the next call.

Why: a BO loop calls ``suggest`` after every batch of runs, and each call re-ran the K-fold
surrogate choice and every GP fit from scratch (issue 29: 5-100 s per call on 60-460-run
tables), although a table that only grew by a few rows hardly moves the fitted length
scales. So each call stores what it chose (surrogate name, reason, K-fold scores) and the
fitted GP hyper-parameters in ``<runs folder>/.metamix/fit-<runs file>.json``; the next call
on the same table, or on one that only *grew* (its first rows equal the fitted ones), takes
that choice and conditions GPs on all rows with the stored hyper-parameters (no L-BFGS).
Every ``refit_every`` rows past the last full fit, or with ``--refit``, it fits afresh.

One entry per command and settings (targets, folds, seed, surrogate flag, caps...), so
``suggest`` and ``optimize`` on one table keep their own. A runs table on an object store,
or a folder that cannot be written, simply gets no cache (one note says so).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from metamix.base.storage import is_uri

VERSION = 1
FOLDER = ".metamix"


@dataclass
class CachedFit:
    """What a full fit chose: ``gp``: one hyper-parameter dict per fitted GP (state-dict
    tensors as nested lists), in the order the command fits them."""

    name: str
    reason: str
    n_rows: int
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    gp: list[dict[str, Any]] = field(default_factory=list)


def cache_file(runs_path: str) -> Path | None:
    """Where a runs table's fits live; None for object-store tables."""
    if is_uri(runs_path):
        return None
    path = Path(runs_path)
    return path.parent / FOLDER / f"fit-{path.name}.json"


def rows_digest(X: np.ndarray, y: np.ndarray, n: int) -> str:
    """Hash of the first ``n`` rows (inputs and objective): equal iff the table only grew."""
    h = hashlib.blake2b(digest_size=16)
    h.update(np.ascontiguousarray(X[:n], dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(y[:n], dtype=np.float64).tobytes())
    return h.hexdigest()


def state_to_json(state: dict) -> dict[str, Any]:
    """A GP state dict (``bo_models.hyperparameters``) as JSON: floats round-trip exactly."""
    return {k: {"dtype": str(v.dtype).removeprefix("torch."), "shape": list(v.shape),
                "data": v.reshape(-1).tolist()} for k, v in state.items()}


def state_from_json(data: dict[str, Any]) -> dict:
    import torch

    return {k: torch.tensor(v["data"], dtype=getattr(torch, v["dtype"])).reshape(v["shape"])
            for k, v in data.items()}


class FitCache:
    """The stored fit for one command and settings on one runs table."""

    def __init__(self, runs_path: str, settings: dict[str, Any], X: np.ndarray,
                 y: np.ndarray) -> None:
        self.path = cache_file(runs_path)
        self.key = json.dumps(settings, sort_keys=True, default=str)
        self.X, self.y = X, y

    def _entries(self) -> dict[str, Any]:
        if self.path is None or not self.path.is_file():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # a damaged cache is only a slower call
        return data.get("entries", {}) if data.get("version") == VERSION else {}

    def lookup(self, refit_every: int, refit: bool = False) -> tuple[CachedFit | None, str]:
        """The stored fit when it may be reused, and a line saying why it is or is not."""
        if self.path is None:
            return None, "runs table on an object store: no fit cache"
        if refit:
            return None, "--refit: fitting afresh"
        entry = self._entries().get(self.key)
        if entry is None:
            return None, "no earlier fit with these settings"
        n_fit, n_now = int(entry["n_rows"]), len(self.y)
        if n_now < n_fit or rows_digest(self.X, self.y, n_fit) != entry["digest"]:
            return None, f"the table changed since the last fit on {n_fit} runs: fitting afresh"
        if n_now - n_fit >= refit_every:
            return None, (f"{n_now - n_fit} runs added since the last fit on {n_fit} "
                          f"(--refit-every {refit_every}): fitting afresh")
        fit = CachedFit(entry["name"], entry["reason"], n_fit, entry.get("scores", {}),
                        [state_from_json(s) for s in entry.get("gp", [])])
        added = f" + {n_now - n_fit} new" if n_now > n_fit else ""
        return fit, (f"reusing the fit on {n_fit} runs{added} from {self.path} (refit after "
                     f"{refit_every - (n_now - n_fit)} more runs, or with --refit)")

    def store(self, name: str, reason: str, scores: dict[str, dict[str, float]],
              gp_states: list[dict]) -> str | None:
        """Record a full fit; a note when it cannot be written (the result stands)."""
        if self.path is None:
            return None
        from metamix.base.atomic import write_json_atomic

        entries = self._entries()
        entries[self.key] = {"name": name, "reason": reason, "n_rows": len(self.y),
                             "digest": rows_digest(self.X, self.y, len(self.y)),
                             "scores": scores, "gp": [state_to_json(s) for s in gp_states]}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.path, {"version": VERSION, "entries": entries})
        except OSError as exc:
            return f"cannot keep the fit for the next call ({self.path}: {exc.strerror})"
        return None
