"""Does the cheap n-gram proxy rank data selections like a small transformer does?

Selects ``--n`` (>= 16) subsets of the scored corpus exactly as Meta-rater does (Dirichlet
weight vectors over the demo's scores, first-fit token budgets per domain, plus random
selections), trains an ``ngram`` and a ``gpt`` proxy on each, and prints the Spearman
correlation of their objectives on the report half of the run's Meta-rater targets. Needs
``metamix score`` first.

    .venv/bin/python bench/proxy_fidelity.py --config configs/demo.yaml [--n 16] \\
        [--gpt '{"d_model": 256, "n_layers": 4, "n_heads": 4, "seq_len": 256}']

Runs are recorded in ``<run_dir>/bench_proxy_fidelity/runs-*.parquet`` (resumable).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace

import numpy as np
from rich.console import Console
from scipy.stats import spearmanr

from metamix.base.atomic import write_json_atomic
from metamix.base.hashing import json_hash
from metamix.config import load_config
from metamix.mixtures.metarater.config import MetaraterConfig
from metamix.mixtures.metarater.plan import features_to_weights, sample_features
from metamix.mixtures.metarater.run import open_context, proxy_task
from metamix.mixtures.metarater.summary import run_values
from metamix.mixtures.proxies.gpt import GPTTrainer, TinyGPT
from metamix.mixtures.sweep import RunsTable, run_sweep


def gpt_parameters(params: dict, vocab_size: int) -> int:
    trainer = GPTTrainer(**params)
    model = TinyGPT(vocab_size, trainer.d_model, trainer.n_layers, trainer.n_heads,
                    trainer.seq_len)
    return sum(p.numel() for p in model.parameters())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/demo.yaml")
    ap.add_argument("--n", type=int, default=16, help="selections (>= 16 recommended)")
    ap.add_argument("--random", type=int, default=2, help="of which random selections")
    ap.add_argument("--budget", type=int, default=400_000, help="training tokens per run")
    ap.add_argument("--gpt", default='{"d_model": 64, "n_layers": 2, "n_heads": 2, '
                    '"seq_len": 128}', help="GPTTrainer params (JSON)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    console = Console()
    cfg = load_config(args.config)
    mcfg = (cfg.metarater or MetaraterConfig()).model_copy(update={"token_budget": args.budget})
    gpt_params = {**json.loads(args.gpt)}
    started = time.monotonic()
    objectives: dict[str, list[float | None]] = {}
    with open_context(cfg, mcfg, console) as (ctx, names, directions):
        rng = np.random.default_rng(args.seed)
        features = sample_features(rng, names, directions, mcfg.alpha, args.n - args.random)
        selections = [(f"w{i:03d}", ctx.engine.select(
            features_to_weights(names, directions, f), ctx.cut)) for i, f in enumerate(features)]
        selections += [(f"random-{i}", ctx.engine.select(None, ctx.cut, random_seed=i))
                       for i in range(args.random)]
        ctx.out = cfg.run_dir / "bench_proxy_fidelity"
        for trainer, params in (("ngram", mcfg.proxy.params if mcfg.proxy.trainer == "ngram"
                                 else {}), ("gpt", gpt_params)):
            tasks = [replace(proxy_task(ctx, run_id, "fidelity", {}, sel, args.seed),
                             trainer=trainer, trainer_params=params)
                     for run_id, sel in selections]
            key = json_hash([trainer, params, ctx.key, args.n, args.random, args.budget,
                             args.seed], length=12)
            table = RunsTable(ctx.out / f"runs-{trainer}.parquet", key)
            rows = run_sweep(tasks, table, workers=args.workers, console=console,
                             label=trainer)
            objectives[trainer] = [
                (v["report"]["objective"] if (v := run_values(mcfg.targets, rows[t.run_id]))
                 else None) for t in tasks]
    ok = [i for i in range(args.n) if all(objectives[t][i] is not None for t in objectives)]
    rho = float(spearmanr([objectives["ngram"][i] for i in ok],
                          [objectives["gpt"][i] for i in ok]).statistic)
    n_params = gpt_parameters(gpt_params, cfg.tokenizer.vocab_size)
    result = {"spearman_ngram_vs_gpt": rho, "n_selections": len(ok), "budget": args.budget,
              "gpt": gpt_params, "gpt_parameters": n_params, "objectives": objectives,
              "seconds": time.monotonic() - started}
    write_json_atomic(cfg.run_dir / "bench_proxy_fidelity" / "fidelity.json", result)
    console.print(f"ngram vs gpt ({gpt_params}, {n_params:,} parameters) on the report "
                  f"half of the targets: Spearman {rho:.3f} over {len(ok)} selections "
                  f"({args.budget:,} tokens/run, {result['seconds']:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
