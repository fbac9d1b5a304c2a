"""MDE feature speed and token-subsampling error (synthetic expert probabilities).

RegMix ships no per-token expert probabilities, so this uses a synthetic cache of the
real shape: E = 17 experts, V = 13 validation domains, T = 13 x 50,000 tokens, with
expert quality varying by domain. Reports seconds for 10^5 mixtures (subsampled to
4,096 tokens/domain) and the max / mean absolute error of the subsampled features vs all
tokens on 1,000 mixtures.

    .venv/bin/python bench/regmix_mde.py [--per-domain 4096] [--mixtures 100000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from metamix.mixtures.mix.mde import mde_features, mde_features_subsampled  # noqa: E402


def synthetic_cache(n_experts: int = 17, n_val: int = 13, per_val: int = 50_000,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_val), per_val)
    skill = rng.normal(0, 1, size=(n_experts, n_val))  # expert d on domain v
    logits = skill[:, labels] + rng.normal(0, 1.5, size=(n_experts, labels.size))
    probs = 1 / (1 + np.exp(-(logits - 2.0)))  # token probabilities in (0, 1)
    return probs.astype(np.float32), labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-domain", type=int, default=4096)
    parser.add_argument("--mixtures", type=int, default=100_000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    probs, labels = synthetic_cache()
    mixtures = np.random.default_rng(1).dirichlet(np.full(17, 0.5), size=args.mixtures)
    started = time.perf_counter()
    feats = mde_features_subsampled(probs, labels, mixtures, per_domain=args.per_domain)
    took = time.perf_counter() - started
    full = mde_features(probs, labels, mixtures[:1000], chunk=256)
    err = np.abs(feats[:1000] - full)
    spread = full.std(axis=0).mean()
    print(f"E=17 experts, T={labels.size:,} tokens, {args.per_domain} tokens/domain kept")
    print(f"{args.mixtures:,} mixtures: {took:.1f}s ({feats.shape[1]} MDE features each)")
    print(f"subsample error vs all tokens (1,000 mixtures): max {err.max():.4f}, "
          f"mean {err.mean():.4f} nats; spread of features across mixtures {spread:.3f} nats")


if __name__ == "__main__":
    main()
