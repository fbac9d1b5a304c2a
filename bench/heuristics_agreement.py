"""How often our heuristic filters make datatrove's keep/drop decision (goal: >= 98% each).

Runs datatrove's Gopher quality, Gopher repetition, C4 quality and FineWeb quality filters
(default parameters) document by document on the bundled corpus, runs our families in
batches, and prints per filter: agreement, a keep/drop confusion table, the most frequent
(datatrove reason, our reason) disagreements, and a few example documents.

    .venv/bin/python bench/heuristics_agreement.py [--limit N | --limit 0] [--examples K]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

from heuristics_common import (
    DEFAULT_CORPUS_GLOB,
    FAMILY_TO_DATATROVE,
    datatrove_filters,
    load_corpus,
    run_datatrove,
    run_ours,
)

from metamix.scorers.registry import SCORERS, load_builtin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=DEFAULT_CORPUS_GLOB)
    parser.add_argument(
        "--limit",
        type=int,
        default=8000,
        help="deterministic sample of N docs (default 8000, a few minutes); 0 = all",
    )
    parser.add_argument("--examples", type=int, default=3, help="examples per disagreement")
    parser.add_argument("--family", action="append", help="only these families")
    args = parser.parse_args()

    table = load_corpus(args.corpus, args.limit or None)
    texts = table.column("text").to_pylist()
    ids = table.column("id").to_pylist()
    domains = table.column("domain").to_pylist()
    families = [f for f in FAMILY_TO_DATATROVE if not args.family or f in args.family]
    print(f"{len(texts)} documents from {args.corpus}")

    load_builtin()
    ours = {name: SCORERS[name]() for name in families}
    start = time.perf_counter()
    our_columns = run_ours(ours, table)
    print(f"ours: {time.perf_counter() - start:.1f}s")

    reference = {k: v for k, v in datatrove_filters().items() if k in families}
    start = time.perf_counter()

    def progress(index: int) -> None:
        if index and index % 5000 == 0:
            print(f"  datatrove: {index} docs, {time.perf_counter() - start:.0f}s", flush=True)

    theirs = run_datatrove(reference, texts, progress)
    print(f"datatrove: {time.perf_counter() - start:.1f}s\n")

    for family in families:
        ours_reason = our_columns[ours[family].drop_reason_column].to_pylist()
        dt_reason = theirs[family]
        agree = sum((a is None) == (b is None) for a, b in zip(dt_reason, ours_reason, strict=True))
        confusion = Counter(
            (a is None, b is None) for a, b in zip(dt_reason, ours_reason, strict=True)
        )
        print(
            f"== {family} vs datatrove {FAMILY_TO_DATATROVE[family]}: "
            f"{100 * agree / len(texts):.2f}% keep/drop agreement"
        )
        print(f"   {'':18}{'ours keep':>10}{'ours drop':>10}")
        for dt_keep, label in ((True, "datatrove keep"), (False, "datatrove drop")):
            print(f"   {label:18}{confusion[(dt_keep, True)]:>10}{confusion[(dt_keep, False)]:>10}")
        same_reason = sum(a == b for a, b in zip(dt_reason, ours_reason, strict=True))
        print(f"   same reason (incl. both keep): {100 * same_reason / len(texts):.2f}%")
        pairs = Counter(
            (a, b)
            for a, b in zip(dt_reason, ours_reason, strict=True)
            if (a is None) != (b is None)
        )
        for (a, b), count in pairs.most_common(8):
            print(f"   {count:6d}  datatrove={a!s:28} ours={b!s}")
            shown = 0
            for i, (x, y) in enumerate(zip(dt_reason, ours_reason, strict=True)):
                if (x, y) == (a, b) and shown < args.examples:
                    snippet = texts[i][:160].replace("\n", "\\n")
                    signals = {
                        name: _fmt(column[i].as_py())
                        for name, column in our_columns.items()
                        if name in ours[family].signal_schema().names
                    }
                    print(f"           id={ids[i]} domain={domains[i]} len={len(texts[i])}")
                    print(f"           {snippet!r}")
                    print(f"           {signals}")
                    shown += 1
        print()


def _fmt(value: object) -> object:
    return round(value, 4) if isinstance(value, float) else value


if __name__ == "__main__":
    main()
