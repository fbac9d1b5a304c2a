"""Does the cheap n-gram proxy rank data subsets like a small transformer does?

Trains an ``ngram`` and a ``gpt`` proxy on the same selections (top fraction under >= 16
Dirichlet weight vectors over the demo's scores, same token budget and seed) and prints
the Spearman correlation of their validation losses. Needs ``metamix score`` first.

    .venv/bin/python bench/proxy_fidelity.py --config configs/demo.yaml [--n 16]

Runs are recorded in ``<run_dir>/bench_proxy_fidelity/runs-*.parquet`` (resumable).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from metamix.base.atomic import write_json_atomic  # noqa: E402
from metamix.config import load_config  # noqa: E402
from metamix.mixtures.metarater.run import default_scores  # noqa: E402
from metamix.mixtures.metarater.scores import load_score_matrix, select_top_fraction  # noqa: E402
from metamix.mixtures.proxies import (  # noqa: E402
    TrainingData,
    ValidationSet,
    build_token_cache,
    load_token_cache,
)
from metamix.mixtures.sweep import ProxyTask, RunsTable, run_sweep  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/demo.yaml")
    ap.add_argument("--n", type=int, default=16, help="weight vectors (>= 16 recommended)")
    ap.add_argument("--fraction", type=float, default=0.15)
    ap.add_argument("--budget", type=int, default=300_000, help="training tokens per run")
    ap.add_argument("--gpt", default='{"d_model": 64, "n_layers": 2, "n_heads": 2, '
                    '"seq_len": 128}', help="GPTTrainer params (JSON)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    console = Console()
    cfg = load_config(args.config)
    run_dir = cfg.run_dir
    scored = sorted((run_dir / "scored").glob("part-*.parquet"))
    valid = sorted((run_dir / "validation").glob("part-*.parquet"))
    if not scored or not valid:
        console.print(f"[red]no scored/validation shards in {run_dir}: run `metamix score`")
        return 2
    names = default_scores(scored)
    matrix = load_score_matrix(scored, names)
    cache_root = cfg.resolve(cfg.out_dir) / "_cache" / "tokens"
    train = str(build_token_cache(scored, run_dir / "tokenizer.json", cache_root))
    validation = ValidationSet(str(build_token_cache(valid, run_dir / "tokenizer.json",
                                                     cache_root)))
    lengths = load_token_cache(train).doc_lengths()
    rng = np.random.default_rng(args.seed)
    vectors = [dict(zip(names, rng.dirichlet(np.ones(len(names))), strict=True))
               for _ in range(args.n)]
    out = run_dir / "bench_proxy_fidelity"
    gpt_params = {**json.loads(args.gpt), "threads": 1}
    losses: dict[str, list[float]] = {}
    started = time.monotonic()
    for trainer, params in (("ngram", {}), ("gpt", gpt_params)):
        tasks = []
        for i, weights in enumerate(vectors):
            rows = select_top_fraction(matrix, weights, args.fraction)
            tasks.append(ProxyTask(
                run_id=f"w{i:03d}", kind="dirichlet", weights=weights, trainer=trainer,
                trainer_params=params,
                data=TrainingData(train, rows, args.budget, args.seed), validation=validation,
                selection_docs=len(rows), selection_tokens=int(lengths[rows].sum()),
                work_dir=str(out / "work")))
        key = hashlib.sha256(json.dumps([trainer, Path(train).name, args.n, args.seed,
                                         args.budget, args.fraction, params],
                                        sort_keys=True).encode()).hexdigest()[:12]
        table = RunsTable(out / f"runs-{trainer}.parquet", key)
        rows_by_id = run_sweep(tasks, table, workers=args.workers, console=console,
                               label=trainer)
        losses[trainer] = [rows_by_id[t.run_id]["mean_loss"] for t in tasks]
    ok = [i for i in range(args.n) if all(losses[t][i] is not None for t in losses)]
    rho = float(spearmanr([losses["ngram"][i] for i in ok],
                          [losses["gpt"][i] for i in ok]).statistic)
    result = {"spearman_ngram_vs_gpt": rho, "n_vectors": len(ok), "budget": args.budget,
              "gpt": gpt_params, "losses": losses, "seconds": time.monotonic() - started}
    write_json_atomic(out / "fidelity.json", result)
    console.print(f"ngram vs gpt proxy loss: Spearman {rho:.3f} over {len(ok)} weight vectors "
                  f"({args.budget} tokens/run, {result['seconds']:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
