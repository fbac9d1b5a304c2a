"""Run any training program as a proxy through a small file protocol.

metamix writes ``manifest.json`` into the run's work directory and runs the command
template (``{manifest}``, ``{output}`` and ``{work_dir}`` are substituted per argument, so
paths with spaces are safe; no shell is involved). The manifest holds:

    train_files       Parquet with the training documents (id, domain, text, n_tokens_used)
                      in training order, already cut to the token budget
    token_budget      the budget (tokens of the run's BPE) or null; seed; tokenizer (path)
    validation_files  the held-out Parquet files; validation_domains: the domains to report
    output            where the program must write its result JSON

The program must exit 0 and write ``{"losses": {domain: nats_per_token}, "mean_loss": x}``
(optionally ``"token_logprobs": "path.npy"`` in the canonical validation order, and
``"metrics": {name: value}`` from the user's own evaluation harness, which Meta-rater's
``metric`` targets read as ``<metric>/fit`` and ``<metric>/report``). Evaluation sets built
from Meta-rater targets have a ``context`` column: for those rows the loss is of ``text``
given ``context``, per token of ``text``, averaged over rows. A non-zero
exit, a timeout, a missing or unparsable file, a missing domain or a non-finite value
raises ``ProxyError`` with a one-line reason, which the sweep records.
"""

from __future__ import annotations

import json
import math
import shlex
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from metamix.base.atomic import atomic_path, write_json_atomic
from metamix.mixtures.proxies.base import (
    ProxyError,
    ProxyResult,
    ProxyTrainer,
    TrainingData,
    ValidationSet,
)


class ExternalTrainer(ProxyTrainer):
    """A command-template proxy; see the module docstring for the protocol."""

    name = "external"

    def __init__(self, command: str | list[str], timeout_s: float = 3600.0) -> None:
        self.command = command
        self.timeout_s = timeout_s

    def fit_evaluate(self, train: TrainingData, validation: ValidationSet, *,
                     return_logprobs: bool = False, work_dir: Path | None = None) -> ProxyResult:
        if work_dir is None:
            work_dir = Path(tempfile.mkdtemp(prefix="metamix-external-"))
        work_dir = Path(work_dir).resolve()
        work_dir.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        output = work_dir / "result.json"
        output.unlink(missing_ok=True)
        n_train = _write_training_parquet(train, work_dir / "train.parquet")
        val = validation.load()
        val_meta = json.loads((Path(validation.corpus) / "meta.json").read_text())
        manifest = {
            "train_files": [str(work_dir / "train.parquet")], "token_budget": train.token_budget,
            "seed": train.seed, "n_train_tokens": n_train,
            "tokenizer": json.loads((Path(train.corpus) / "meta.json").read_text())["tokenizer"],
            "validation_files": val_meta["files"], "validation_domains": list(val.domain_names),
            "output": str(output),
        }
        write_json_atomic(work_dir / "manifest.json", manifest)
        self._run(work_dir, output)
        losses, mean, logprobs, metrics = _read_result(output, val.domain_names, val.n_tokens)
        return ProxyResult(losses=losses, mean_loss=mean, n_train_tokens=n_train,
                           seconds=time.perf_counter() - start,
                           token_logprobs=logprobs if return_logprobs else None,
                           info={"metrics": metrics} if metrics else {})

    def _run(self, work_dir: Path, output: Path) -> None:
        template = (shlex.split(self.command) if isinstance(self.command, str)
                    else list(self.command))
        fields = {"manifest": str(work_dir / "manifest.json"), "output": str(output),
                  "work_dir": str(work_dir)}
        args = [part.format(**fields) for part in template]
        try:
            proc = subprocess.run(args, cwd=work_dir, capture_output=True, text=True,
                                  timeout=self.timeout_s, check=False)
        except subprocess.TimeoutExpired:
            raise ProxyError(f"external trainer timed out after {self.timeout_s:g}s") from None
        except OSError as exc:
            raise ProxyError(f"external trainer could not start: {exc}") from None
        (work_dir / "stdout.log").write_text(proc.stdout)
        (work_dir / "stderr.log").write_text(proc.stderr)
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["(no stderr)"])[-1][:300]
            raise ProxyError(f"external trainer exited with status {proc.returncode}: {tail}")


def _write_training_parquet(train: TrainingData, dest: Path) -> int:
    corpus = train.load()
    rows, used = train.ordered_rows()
    files = json.loads((Path(corpus.path) / "meta.json").read_text())["files"]
    table = pa.concat_tables([pq.read_table(f, columns=["id", "domain", "text"]) for f in files])
    table = table.take(pa.array(rows)).append_column("n_tokens_used", pa.array(used, pa.int64()))
    with atomic_path(dest) as tmp:
        pq.write_table(table, tmp)
    return int(used.sum())


def _number(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def _read_result(path: Path, domains: tuple[str, ...], n_tokens: int
                 ) -> tuple[dict[str, float], float, np.ndarray | None, dict[str, float]]:
    if not path.is_file():
        raise ProxyError("external trainer exited 0 but wrote no result file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProxyError(f"external trainer result is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("losses"), dict):
        raise ProxyError("external trainer result needs an object with a 'losses' object")
    missing = [d for d in domains if d not in data["losses"]]
    if missing:
        raise ProxyError(f"external trainer result has no loss for domains {missing}")
    losses = {d: _number(data["losses"][d]) for d in domains}
    mean = _number(data.get("mean_loss"))
    bad = [d for d, v in losses.items() if v is None] + (["mean_loss"] if mean is None else [])
    if bad:
        raise ProxyError(f"external trainer result has missing/non-finite values: {bad}")
    logprobs = None
    if data.get("token_logprobs") is not None:
        logprobs = np.load(Path(path).parent / str(data["token_logprobs"]))
        if logprobs.shape != (n_tokens,) or not np.all(np.isfinite(logprobs)):
            raise ProxyError(f"token_logprobs must be {n_tokens} finite values")
    raw_metrics = data.get("metrics") or {}
    if not isinstance(raw_metrics, dict):
        raise ProxyError("external trainer result: 'metrics' must be an object")
    metrics = {str(k): _number(v) for k, v in raw_metrics.items()}
    bad_metrics = sorted(k for k, v in metrics.items() if v is None)
    if bad_metrics:
        raise ProxyError(f"external trainer result has non-finite metrics: {bad_metrics}")
    return ({d: v for d, v in losses.items() if v is not None}, float(mean), logprobs,
            {k: v for k, v in metrics.items() if v is not None})
