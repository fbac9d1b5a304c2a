"""Stream a run's ``mixture/interleave_datasets.py`` and compare what it yields with the mixture.

Prints, per domain, the mixture's token share, the selection's and the stream's, and the
streamed total against the selected total (the goal: shares within 1 point, totals equal).
By default it renders the current snippet for the run (a temporary mixture/ folder beside a
link to the run's selected/, so the run folder is only read); ``--snippet`` streams an
existing file instead, e.g. one an older metamix wrote::

    python bench/interleave_check.py --run-dir out/demo
    python bench/interleave_check.py --run-dir out/demo \\
        --snippet out/demo/mixture/interleave_datasets.py
"""

from __future__ import annotations

import argparse
import json
import runpy
import tempfile
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

from metamix.mixtures.mix.report import write_interleave_snippet


def stream_tokens(snippet: Path) -> Counter[str]:
    mixed = runpy.run_path(str(snippet))["mixed"].select_columns(["domain", "n_tokens"])
    tokens: Counter[str] = Counter()
    for row in mixed:
        tokens[row["domain"]] += row["n_tokens"]
    return tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, default=Path("out/demo"))
    parser.add_argument("--snippet", type=Path, default=None)
    args = parser.parse_args()
    mixture = json.loads((args.run_dir / "mixture" / "weights.json").read_text())
    shares: dict[str, float] = mixture["weights"]
    selected = {d: sum(pq.read_table(args.run_dir / "selected" / f"{d}.parquet",
                                     columns=["n_tokens"]).column(0).to_pylist())
                for d in shares if (args.run_dir / "selected" / f"{d}.parquet").is_file()}
    started = time.monotonic()
    if args.snippet is None:
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "selected").symlink_to((args.run_dir / "selected").resolve())
            snippet = write_interleave_snippet(Path(tmp) / "mixture" / "interleave_datasets.py",
                                               shares, seed=0)
            streamed = stream_tokens(snippet)
    else:
        streamed = stream_tokens(args.snippet)
    seconds = time.monotonic() - started
    sel_total, str_total = sum(selected.values()), sum(streamed.values())
    print(f"{'domain':<12}{'mixture':>9}{'selected':>10}{'streamed':>10}")
    worst = 0.0
    for d, w in shares.items():
        got = streamed[d] / str_total if str_total else 0.0
        worst = max(worst, abs(got - w))
        print(f"{d:<12}{w:>9.3f}{selected.get(d, 0) / sel_total:>10.3f}{got:>10.3f}")
    print(f"tokens: selected {sel_total:,}, streamed {str_total:,} "
          f"({str_total / sel_total:.2f}x the selection); worst share gap {worst * 100:.1f} "
          f"points (goal <= 1); streamed in {seconds:.0f} s")


if __name__ == "__main__":
    main()
