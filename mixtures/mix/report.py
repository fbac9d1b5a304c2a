"""Outputs of ``run_mix``: the mixture files for downstream jobs and the console summary.

``<run_dir>/mixture/``:

* ``weights.json``: the nested mixture file ``metamix.pipeline.selection.files.load_mixture_file``
  reads (``select.mode: token_budget`` + ``select.mixture_file``): ``weights`` and
  ``total_tokens`` are the shares and tokens ``select`` will ship (the chosen mixture after
  the shortfall rule, on the eligible documents), ``chosen_weights`` the mixture chosen;
  plus per-domain detail, predicted/actual losses and provenance. ``weights.yaml``: the same
  content as YAML.
* ``megatron_data_path.txt``: Megatron-LM ``--data-path`` blend ``w1 prefix1 w2 prefix2 ...``;
  domain d's prefix is ``<mix.megatron_prefix>/<d>_text_document``, the name
  ``tools/preprocess_data.py --output-prefix <megatron_prefix>/<d> --json-keys text`` gives
  and ``metamix export --format megatron`` writes (``<d>`` through
  ``metamix.base.names.file_name``: a domain such as ``../x`` cannot leave the folder).
* ``interleave_datasets.py``: a ``datasets.interleave_datasets`` snippet over the
  ``<run_dir>/selected/<domain>.parquet`` files ``metamix select`` writes, sized to the
  mixture: it streams each selected document once, so the stream's token shares are the
  mixture's and its total is the selection's.

``select`` rewrites ``megatron_data_path.txt`` and ``interleave_datasets.py`` with the shares
it shipped when its ``mixture_file`` is this ``weights.json`` (``write_shipped_files``).

These files are byte-identical across clean reruns of one config: paths in them are
relative to the run directory, and timings, K-fold seconds and host facts go to
``<run_dir>/logs/mix.json`` instead (``write_mix_log``), the one place outside that promise.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from rich.console import Console
from rich.table import Table

from metamix.base.atomic import write_bytes_atomic
from metamix.base.names import file_name
from metamix.mixtures.mix.config import MixConfig
from metamix.mixtures.mix.data import EligibleIndex
from metamix.mixtures.mix.emit import rounded_weights, write_mixture_file
from metamix.mixtures.mix.proposals import Candidate
from metamix.pipeline.config import PipelineConfig

INTERLEAVE_TEMPLATE = '''"""Stream the selection at the chosen mixture with datasets (from metamix).

`metamix select` (mode token_budget, mixture_file: this mixture) sizes each
selected/<domain>.parquet to the domain's token share, so the stream reads every selected
document exactly once: at each step it draws a domain with probability proportional to the
domain's document count (token weights would over-draw short-document domains), and
`all_exhausted_without_replacement` neither repeats a finished domain nor stops early.
"""
import sys
from pathlib import Path

import pyarrow.parquet as pq
from datasets import interleave_datasets, load_dataset

TOKEN_SHARES = {weights!r}   # what ships: domain -> share of the selection's tokens
CHOSEN_SHARES = {chosen!r}   # the mixture metamix mix chose, before the shortfall rule
SEED = {seed!r}
RUN_DIR = Path(__file__).resolve().parent.parent   # out/<run>/; this file is in mixture/
FILES = {{d: RUN_DIR / "selected" / name for d, name in {files!r}.items()}}

DOMAINS = [d for d, w in TOKEN_SHARES.items() if w > 0]
for d in DOMAINS:
    if not FILES[d].is_file():
        sys.exit(f"{{FILES[d]}} is missing: run `metamix select` with this mixture first")
DOCS = {{d: pq.read_metadata(FILES[d]).num_rows for d in DOMAINS}}
TOKENS = {{d: sum(pq.read_table(FILES[d], columns=["n_tokens"]).column(0).to_pylist())
          for d in DOMAINS}}
_total = sum(TOKENS.values())
for d in DOMAINS:   # a selection not sized to this mixture would need repeating or dropping
    if _total == 0 or abs(TOKENS[d] / _total - TOKEN_SHARES[d]) > 0.01:
        sys.exit(f"selected/ holds {{TOKENS[d]:,}} of {{_total:,}} tokens in {{d}}, not the "
                 f"mixture's share {{TOKEN_SHARES[d]:.3f}}: select with select.mode: "
                 f"token_budget and select.mixture_file: mixture/weights.json")
DOMAINS = [d for d in DOMAINS if DOCS[d] > 0]
PROBABILITIES = [DOCS[d] / sum(DOCS.values()) for d in DOMAINS]
datasets = [load_dataset("parquet", data_files=str(FILES[d]), split="train", streaming=True)
            .shuffle(seed=SEED, buffer_size=10_000) for d in DOMAINS]
mixed = interleave_datasets(datasets, probabilities=PROBABILITIES, seed=SEED,
                            stopping_strategy="all_exhausted_without_replacement")
'''


def write_interleave_snippet(path: Path, weights: dict[str, float], seed: int,
                             chosen: dict[str, float] | None = None) -> Path:
    """``interleave_datasets.py`` over ``selected/``, which streams the shipped token shares
    (``weights``; ``chosen``: the mixture before the shortfall rule, shown beside them)."""
    from metamix.pipeline.selection.write import domain_file_name  # imports DuckDB

    files = {d: domain_file_name(d) for d in weights}
    snippet = INTERLEAVE_TEMPLATE.format(weights=dict(weights), seed=seed, files=files,
                                         chosen=dict(chosen if chosen is not None else weights))
    write_bytes_atomic(path, snippet.encode())
    return path


def write_shipped_files(out: Path, shipped: dict[str, float], chosen: dict[str, float],
                        megatron_prefix: str, seed: int) -> None:
    """``megatron_data_path.txt`` (the blend of the shipped shares: one line for
    ``--data-path $(cat ...)``) and ``interleave_datasets.py`` (shipped and chosen shares);
    ``metamix mix`` writes them with the shares it plans, ``select`` again with the shares
    it shipped."""
    blend = " ".join(f"{shipped[d]:.6f} {megatron_prefix}/{file_name(d)}_text_document"
                     for d in sorted(shipped) if shipped[d] > 0)
    write_bytes_atomic(out / "megatron_data_path.txt", (blend + "\n").encode())
    write_interleave_snippet(out / "interleave_datasets.py", shipped, seed, chosen)


def refresh_after_select(cfg: PipelineConfig, megatron_prefix: str,
                         summary: dict[str, Any]) -> None:
    """After ``select``: when it budgeted from this run's ``mixture/weights.json``, rewrite
    the blend and the interleave snippet with the shares it shipped (the summary's
    ``shares``), the chosen ones beside them; else refresh the snippet from the mixture."""
    out = cfg.run_dir / "mixture"
    weights_file = out / "weights.json"
    if not weights_file.is_file():
        return
    mixture = json.loads(weights_file.read_text())
    chosen = mixture.get("chosen_weights") or mixture["weights"]
    sel = cfg.select
    own = (sel is not None and sel.mixture_file is not None and
           cfg.resolve(str(sel.mixture_file)).resolve() == weights_file.resolve())
    shipped = (summary.get("shares") or {}).get("shipped")
    if own and shipped:
        write_shipped_files(out, shipped, chosen, megatron_prefix, cfg.seed)
    else:
        write_interleave_snippet(out / "interleave_datasets.py", mixture["weights"], cfg.seed,
                                 chosen)


def planned_shares(domains: list[str], chosen: dict[str, float], available: np.ndarray,
                   target: int) -> tuple[dict[str, float], int]:
    """The shares and total ``select`` will ship for ``chosen``: its budgets after the
    shortfall rule (``metamix.pipeline.selection.shares``) on the eligible tokens; the
    chosen mixture itself when every budget fits."""
    from metamix.pipeline.selection.shares import redistribute, rounded_shares

    requested = {d: math.floor(round(chosen[d] * target, 6)) for d in domains}
    moved = redistribute(requested, {d: int(a) for d, a in zip(domains, available,
                                                                strict=True)}, chosen)
    if moved == requested:
        return dict(chosen), target
    return rounded_shares(moved), sum(moved.values())


def _objective(losses: dict[str, float] | None, val_domains: list[str],
               weights: np.ndarray) -> float | None:
    if losses is None:
        return None
    return float(np.array([losses[v] for v in val_domains]) @ weights)


def emit_mixture(out: Path, *, mcfg: MixConfig, eligible: EligibleIndex, final: Candidate,
                 prior: np.ndarray, caps: np.ndarray, target: int,
                 val_domains: list[str], objective_weights: np.ndarray,
                 predicted_each: np.ndarray, actual: dict[str, float] | None, surrogate: str,
                 kfold: dict[str, dict[str, float]], runs_used: list[str], runs_path: Path,
                 sweep_key: str, cfg: PipelineConfig) -> dict[str, Any]:
    """Write every file of ``out`` and return the summary (the weights.json payload):
    ``weights`` and ``total_tokens`` are what ``select`` will ship, ``chosen_weights`` the
    mixture chosen; domains without eligible documents get weight 0."""
    domains, available = eligible.index.domains, eligible.available
    chosen = rounded_weights(domains, final.weights)
    weights, total = planned_shares(domains, chosen, available, target)
    everything = sorted([*domains, *eligible.empty])
    zero = dict.fromkeys(eligible.empty, 0.0)
    chosen, weights = {**chosen, **zero}, {**weights, **zero}
    at = {d: i for i, d in enumerate(domains)}

    def row(d: str) -> dict[str, Any]:
        i, tokens = at.get(d), int(round(weights[d] * total))
        avail = int(available[i]) if i is not None else 0
        return {"weight": weights[d], "chosen_weight": chosen[d],
                "prior": float(prior[i]) if i is not None else 0.0,
                "cap": float(caps[i]) if i is not None else 0.0, "tokens": tokens,
                "available_tokens": avail, "tokens_before_eligibility":
                eligible.all_tokens.get(d, avail),
                "epochs": float(tokens / avail) if avail else 0.0}
    per_domain = {d: row(d) for d in everything}
    predicted = {v: float(predicted_each[j]) for j, v in enumerate(val_domains)}
    sel = cfg.select
    extra: dict[str, Any] = {
        "chosen_weights": {d: chosen[d] for d in everything},
        "chosen_total_tokens": target,
        "per_domain": per_domain,
        "eligibility": {"hard_filters": list(sel.hard_filters) if sel else [],
                        "where": sel.where if sel else None,
                        "drop_duplicates": sel.drop_duplicates if sel else True},
        "objective": {"weights": {v: float(objective_weights[j])
                                  for j, v in enumerate(val_domains)},
                      "spec": mcfg.objective},
        "predicted_losses": predicted,
        "actual_proxy_losses": actual,
        "actual_proxy_loss": _objective(actual, val_domains, objective_weights),
        "provenance": {
            "config_hash": mcfg.config_hash(), "sweep_key": sweep_key, "source": final.source,
            "surrogate": surrogate, "n_runs_used": len(runs_used),
            "runs_table": runs_path.relative_to(cfg.run_dir).as_posix()
            if runs_path.is_relative_to(cfg.run_dir) else runs_path.name,
            "runs_used": runs_used, "proxy": mcfg.proxy.model_dump(mode="json"),
            "proxy_tokens": mcfg.proxy_tokens, "max_epochs": mcfg.max_epochs,
            "megatron_prefix_convention": f"{mcfg.megatron_prefix}/<domain>_text_document"},
        "surrogate_kfold": {k: {m: v for m, v in s.items() if m != "seconds"}
                            for k, s in kfold.items()},
    }
    extra = _plain(extra)
    out.mkdir(parents=True, exist_ok=True)
    write_mixture_file(out / "weights.json", everything,
                       np.array([weights[d] for d in everything]), total_tokens=total,
                       predicted_loss=final.predicted, **extra)
    payload = {"weights": weights, "total_tokens": total, "predicted_loss": final.predicted,
               **extra}
    text = yaml.safe_dump(_plain(payload), sort_keys=True, allow_unicode=True)
    write_bytes_atomic(out / "weights.yaml", text.encode("utf-8"))
    write_shipped_files(out, weights, chosen, mcfg.megatron_prefix, cfg.seed)
    return payload


def _plain(obj: Any) -> Any:
    """JSON-like values for YAML (NaN becomes null: YAML readers disagree on .nan)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, float | np.floating):
        return None if not math.isfinite(float(obj)) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def _f(v: float | None, digits: int = 4) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"


def write_mix_log(run_dir: Path, timings: dict[str, float],
                  kfold: dict[str, dict[str, float]], torch_threads: int, workers: int,
                  paths: dict[str, Path]) -> Path:
    """``<run_dir>/logs/mix.json``: what differs between two clean runs (seconds, host)."""
    import os
    import platform

    import torch

    payload = {
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "surrogate_kfold_seconds": {k: round(s.get("seconds", float("nan")), 3)
                                    for k, s in kfold.items()},
        "host": {"hostname": platform.node(), "cpu_count": os.cpu_count(),
                 "python": platform.python_version(), "torch": torch.__version__,
                 "torch_threads": torch_threads, "workers": workers},
        "paths": {k: str(Path(v).resolve()) for k, v in paths.items()},
    }
    path = run_dir / "logs" / "mix.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, (json.dumps(_plain(payload), indent=2) + "\n").encode())
    return path


def print_summary(summary: dict[str, Any], console: Console,
                  seconds: float | None = None) -> None:
    """Chosen weights vs prior, predicted vs actual loss, and the surrogate K-fold table."""
    mix = Table(title="chosen mixture vs token prior")
    for col in ("domain", "prior", "chosen", "ships", "cap", "tokens", "epochs"):
        mix.add_column(col, justify="left" if col == "domain" else "right")
    for d, row in summary["per_domain"].items():
        mix.add_row(d, _f(row["prior"]), _f(row.get("chosen_weight", row["weight"])),
                    _f(row["weight"]), _f(row["cap"]), f"{row['tokens']:,}",
                    _f(row["epochs"], 2))
    console.print(mix)
    losses = Table(title=f"validation loss of the chosen mixture (nats/token; "
                         f"from {summary['provenance']['source']})")
    for col in ("validation domain", "objective weight", "predicted", "actual proxy"):
        losses.add_column(col, justify="left" if col.startswith("validation") else "right")
    actual = summary["actual_proxy_losses"] or {}
    for v, p in summary["predicted_losses"].items():
        losses.add_row(v, _f(summary["objective"]["weights"][v], 3), _f(p), _f(actual.get(v)))
    losses.add_row("[bold]objective", "", _f(summary["predicted_loss"]),
                   _f(summary["actual_proxy_loss"]))
    console.print(losses)
    kf = Table(title=f"surrogates, {len(summary['provenance']['runs_used'])} runs, K-fold "
                     f"(best: {summary['provenance']['surrogate']})")
    for col in ("surrogate", "spearman", "mse"):
        kf.add_column(col, justify="left" if col == "surrogate" else "right")
    for label, s in summary["surrogate_kfold"].items():
        kf.add_row(label, _f(s["spearman"], 3), f"{s['mse']:.2e}")
    console.print(kf)
    console.print("wrote " + ", ".join(f"mixture/{n}" for n in (
        "weights.json", "weights.yaml", "megatron_data_path.txt", "interleave_datasets.py"))
        + (f" in {seconds:.0f} s" if seconds is not None else ""))
