"""Where our heuristic families spend their time (ours only; no datatrove run).

A quick loop for optimization work: CPU seconds per family, best of N passes over the
same sample as ``heuristics_speed.py``, optionally under pyinstrument.

    .venv/bin/python bench/heuristics_profile.py [--docs 3000] [--profile]
"""

from __future__ import annotations

import argparse
import time

import pyarrow as pa
from heuristics_common import DEFAULT_CORPUS_GLOB, load_corpus
from heuristics_speed import _pin_to_one_core, time_ours


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=DEFAULT_CORPUS_GLOB)
    parser.add_argument("--docs", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="pyinstrument one pass")
    args = parser.parse_args()
    _pin_to_one_core()
    table = load_corpus(args.corpus, args.docs, seed=0).select(["text"])
    start = time.process_time()
    time_ours(table.slice(0, 10), args.batch_size, 1)  # imports, JIT loading
    print(f"first call (imports, JIT cache load): {time.process_time() - start:.2f} s cpu")
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()
        time_ours(table, args.batch_size, 1)
        profiler.stop()
        print(profiler.output_text(unicode=True, color=False, show_all=False))
    best, _, per_family = time_ours(table, args.batch_size, args.repeats)
    print(f"{'ours (all 5 families)':30}{best:>8.3f} s {table.num_rows / best:>10,.0f} docs/s")
    for name, seconds in per_family.items():
        print(f"{'  ' + name:30}{seconds:>8.3f} s")


if __name__ == "__main__":
    pa.set_cpu_count(1)
    main()
