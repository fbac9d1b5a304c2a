"""Data experts (Belenki et al. 2025, Mixture of Data Experts): one proxy per domain.

Each expert is trained once on its own domain; its probability of every validation token is
cached as one row of ``probs.npy`` (E x T float32, rows in domain order, tokens in the
canonical validation order of ``metamix.mixtures.proxies.base``). ``mde_features`` then approximates
any mixture's per-domain validation loss without training. Each expert is saved on its own
as it finishes (``expert-<domain>-<key>.npy``, the domain through ``file_name``), so an
interrupted build resumes; ``key`` hashes everything the probabilities depend on, so changed
data or settings rebuild.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console

from metamix.base.atomic import atomic_path, write_json_atomic
from metamix.base.hashing import json_hash
from metamix.base.names import file_name
from metamix.base.progress import counted_progress
from metamix.mixtures.mix.data import DomainIndex, mixture_data
from metamix.mixtures.proxies import ValidationSet, make_trainer
from metamix.pipeline.config import RayConfig, ResourceRequest


@dataclass(frozen=True)
class Experts:
    """Cached expert probabilities and the validation labels they are scored against."""

    domains: list[str]              # training domain of each expert (row of probs)
    probs: np.ndarray               # (E, T) float32
    token_domains: np.ndarray       # (T,) int index into val_domains
    val_domains: list[str]
    tokens: list[int]               # training tokens of each expert


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, arr)


def build_experts(out_dir: Path, train_cache: str, validation: ValidationSet,
                  index: DomainIndex, trainer: str, params: dict, tokens: int, seed: int,
                  key: str, console: Console, show_progress: bool = True,
                  ray: RayConfig | None = None) -> Experts:
    """Train (or reuse) one expert per domain on up to ``tokens`` tokens of that domain;
    with ``ray`` the missing experts train at once as Ray tasks (the trainer's
    ``ray.proxy_resources`` each), saved here as each one comes back."""
    out_dir.mkdir(parents=True, exist_ok=True)
    val = validation.load()
    budgets = [int(min(tokens, a)) for a in index.available()]
    digest = json_hash([key, trainer, params, budgets, seed], length=12)
    meta_path = out_dir / "meta.json"
    if meta_path.is_file() and json.loads(meta_path.read_text()).get("key") == digest:
        probs = np.load(out_dir / "probs.npy")
        return Experts(index.domains, probs, val.token_domains, list(val.domain_names), budgets)
    paths = [out_dir / f"expert-{file_name(domain)}-{digest}.npy" for domain in index.domains]
    todo = [i for i, path in enumerate(paths) if not path.is_file()]

    def train(i: int) -> np.ndarray:
        onehot = np.eye(len(index.domains))[i]
        data = mixture_data(train_cache, index, onehot, budgets[i], seed)
        result = make_trainer(trainer, params).fit_evaluate(data, validation,
                                                             return_logprobs=True)
        return np.exp(result.token_logprobs).astype(np.float32)

    with counted_progress(console, show_progress, "{task.fields[domain]}") as progress:
        bar = progress.add_task("data experts", total=len(index.domains),
                                domain="", completed=len(index.domains) - len(todo))
        if ray is not None and todo:
            for i, probs_i in _train_on_ray(ray, train, todo, trainer):
                _save_npy(paths[i], probs_i)
                progress.update(bar, advance=1, domain=index.domains[i])
        else:
            for i in todo:
                progress.update(bar, domain=index.domains[i])
                _save_npy(paths[i], train(i))
                progress.update(bar, advance=1)
    rows = [np.load(path) for path in paths]
    probs = np.stack(rows)
    _save_npy(out_dir / "probs.npy", probs)
    write_json_atomic(meta_path, {"key": digest, "domains": index.domains, "tokens": budgets,
                                  "trainer": trainer, "params": params,
                                  "val_domains": list(val.domain_names),
                                  "n_val_tokens": int(probs.shape[1])})
    for stale in out_dir.glob("expert-*.npy"):
        if not stale.name.endswith(f"-{digest}.npy"):
            stale.unlink()
    return Experts(index.domains, probs, val.token_domains, list(val.domain_names), budgets)


def _train_on_ray(cfg: RayConfig, train: Callable[[int], np.ndarray], todo: list[int],
                  trainer: str) -> Iterator[tuple[int, np.ndarray]]:
    from metamix.pipeline.ray_executor import check_fits, connect, task_options

    ray = connect(cfg)
    req = cfg.proxy_resources.get(trainer, ResourceRequest(num_cpus=1))
    check_fits(ray, req, f"ray.proxy_resources.{trainer}")
    remote = ray.remote(train).options(**task_options(req, cfg.max_retries))
    pending = {remote.remote(i): i for i in todo}
    while pending:
        finished, _ = ray.wait(list(pending), num_returns=1)
        for ref in finished:
            yield pending.pop(ref), ray.get(ref)
