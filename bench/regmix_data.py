"""RegMix benchmark data (../shared/benchmarks/regmix): loader and runs-table converter.

The files are read in place and never copied into the repo. ``convert`` writes one of the
RegMix mixture/loss CSV pairs as a metamix runs table (w_<domain> + loss columns), e.g.

    .venv/bin/python bench/regmix_data.py test_1B /tmp/regmix_1B_runs.csv
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

REGMIX_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "benchmarks" / "regmix"
TARGET = "metric/the_pile_pile_cc_val_loss"
SPLITS = {
    "train_1m": ("train_mixture_1m.csv", "train_pile_loss_1m.csv"),
    "test_1m": ("test_mixture_1m.csv", "test_pile_loss_1m.csv"),
    "test_60m": ("test_mixture_60m.csv", "test_pile_loss_60m.csv"),
    "test_1B": ("test_mixture_1B.csv", "test_pile_loss_1B.csv"),
}
WEIGHT_PREFIX = "train_the_pile_"


def available() -> bool:
    return (REGMIX_DIR / "README.md").exists()


def require_data() -> None:
    """Exit 0 with a message when the benchmark data is absent (bench is optional)."""
    if not available():
        print(f"skip: RegMix benchmark data not found at {REGMIX_DIR}")
        sys.exit(0)


def _read(path: Path) -> tuple[list[str], dict[str, list[float]]]:
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    header = rows[0]
    by_index = {r[0]: [float(v) for v in r[1:]] for r in rows[1:]}
    return header[1:], by_index


def load_split(split: str) -> dict:
    """{'domains', 'weights' (n, 17), 'loss_columns', 'losses' (n, 13), 'index'}; rows are
    matched on RegMix's ``index`` column."""
    mix_file, loss_file = SPLITS[split]
    w_cols, mixes = _read(REGMIX_DIR / mix_file)
    l_cols, losses = _read(REGMIX_DIR / loss_file)
    index = [i for i in mixes if i in losses]
    return {"domains": [c.removeprefix(WEIGHT_PREFIX) for c in w_cols],
            "weights": np.array([mixes[i] for i in index]),
            "loss_columns": l_cols, "losses": np.array([losses[i] for i in index]),
            "index": index}


def target(split_data: dict, column: str = TARGET) -> np.ndarray:
    return split_data["losses"][:, split_data["loss_columns"].index(column)]


def convert(split: str, out: Path) -> Path:
    """Write a split as a metamix runs table; weights renormalized (RegMix rounds to 1e-3)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from metamix.mixtures.mix.runs_table import write_runs_table

    data = load_split(split)
    w = data["weights"] / data["weights"].sum(axis=1, keepdims=True)
    losses = {c.removeprefix("metric/the_pile_").removesuffix("_val_loss"): data["losses"][:, j]
              for j, c in enumerate(data["loss_columns"])}
    return write_runs_table(out, data["domains"], w, losses={f"loss_{k}": v
                                                             for k, v in losses.items()})


if __name__ == "__main__":
    require_data()
    if len(sys.argv) != 3 or sys.argv[1] not in SPLITS:
        sys.exit(f"usage: regmix_data.py {{{','.join(SPLITS)}}} OUT.csv|OUT.parquet")
    print(convert(sys.argv[1], Path(sys.argv[2])))
