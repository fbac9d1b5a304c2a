"""Which steps a target needs, like make's prerequisites but read from the run config.

``select`` needs ``metarater`` when its ``weights_file`` is this run's learned weights, and
``mix`` when its ``mixture_file`` is this run's chosen mixture; every target needs
``score``. A finished step leaves a stamp (``out/<run>/_steps/<step>.json``) with a digest
of its config section and inputs and of the outputs it wrote; while all still match, the
chain skips it. ``mix`` plans on the documents select may ship, so select's hard_filters,
where and drop_duplicates and the dedup pass are among its inputs. ``score`` has no stamp:
its per-shard manifests already make a rerun cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the parser imports STEPS; reading a config happens only when a step runs
    from metamix.config import RunConfig

#: Every step in the order a full run takes them.
STEPS: tuple[str, ...] = ("score", "metarater", "mix", "select")

METARATER_WEIGHTS = Path("metarater") / "weights.json"
MIXTURE_WEIGHTS = Path("mixture") / "weights.json"


def _is_run_output(cfg: RunConfig, configured: Path | None, relative: Path) -> bool:
    if configured is None:
        return False
    return cfg.resolve(str(configured)).resolve() == (cfg.run_dir / relative).resolve()


def plan(cfg: RunConfig, until: str) -> list[str]:
    """The steps to run, in order, so that ``until`` can run on a fresh checkout."""
    if until not in STEPS:
        raise ValueError(f"unknown step {until!r}; steps: {', '.join(STEPS)}")
    steps = ["score"]
    if until in ("metarater", "mix"):
        steps.append(until)
    elif until == "select":
        sel = cfg.select
        if sel is not None and _is_run_output(cfg, sel.weights_file, METARATER_WEIGHTS):
            steps.append("metarater")
        if sel is not None and _is_run_output(cfg, sel.mixture_file, MIXTURE_WEIGHTS):
            steps.append("mix")
        steps.append("select")
    return steps


#: What each step reads (besides its config section) and the files that show it finished.
_STEP_FILES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "metarater": (("_manifests/scored.json", "_manifests/validation.json", "tokenizer.json"),
                  ("metarater/weights.json", "metarater/summary.json")),
    "mix": (("_manifests/scored.json", "_manifests/validation.json", "tokenizer.json"),
            ("mixture/weights.json",)),
    "select": (("_manifests/scored.json",), ("selection_summary.json",)),
}
_SECTIONS = {"metarater": ("metarater", "seed"), "mix": ("mix", "seed"), "select": ("select",)}


def _stamp_path(cfg: RunConfig, step: str) -> Path:
    return cfg.run_dir / "_steps" / f"{step}.json"


def _step_key(cfg: RunConfig, step: str) -> str | None:
    """Digest of what decides a step's outputs: its config, its inputs' manifests and, for
    select, the weights and mixture files it reads. None if an input is missing."""
    from metamix import __version__
    from metamix.base.hashing import file_hash, json_hash

    inputs, _ = _STEP_FILES[step]
    paths = [cfg.run_dir / rel for rel in inputs]
    sel = cfg.select
    if step == "select" and sel is not None:
        paths += [cfg.resolve(str(p)) for p in (sel.weights_file, sel.mixture_file) if p]
    dups = cfg.run_dir / "_manifests" / "dups.json"   # the dedup pass, when it ran
    if step in ("select", "mix") and dups.is_file():
        paths.append(dups)
    if not all(p.is_file() for p in paths):
        return None
    # mix plans on the documents select may ship (pipeline/selection/eligible.py)
    eligible = ([sel.hard_filters, sel.where, sel.drop_duplicates] if step == "mix" and sel
                else None)
    return json_hash([__version__, step, cfg.section_hash(*_SECTIONS[step]),
                      [file_hash(p) for p in paths], *([eligible] if eligible else [])])


def is_complete(cfg: RunConfig, step: str) -> bool:
    """True when the step finished with the same config and inputs, and its outputs are
    still the files it wrote."""
    import json

    from metamix.base.hashing import file_hash

    stamp = _stamp_path(cfg, step)
    if step not in _STEP_FILES or not stamp.is_file():
        return False
    try:
        record = json.loads(stamp.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    key = _step_key(cfg, step)
    outputs = record.get("outputs", {})
    return (key is not None and record.get("key") == key and bool(outputs)
            and all((cfg.run_dir / rel).is_file() and file_hash(cfg.run_dir / rel) == digest
                    for rel, digest in outputs.items()))


def mark_complete(cfg: RunConfig, step: str) -> None:
    from metamix.base.atomic import write_json_atomic
    from metamix.base.hashing import file_hash

    if step not in _STEP_FILES:
        return
    key = _step_key(cfg, step)
    _, outputs = _STEP_FILES[step]
    if key is None or not all((cfg.run_dir / rel).is_file() for rel in outputs):
        return
    write_json_atomic(_stamp_path(cfg, step), {
        "key": key, "outputs": {rel: file_hash(cfg.run_dir / rel) for rel in outputs}})
