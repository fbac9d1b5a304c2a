"""Run every benchmark in bench/ in turn (`make bench`); each prints its own table.

Benchmarks are never part of `make test`: they need the bench extra (datatrove, spaCy),
minutes of CPU, and for some the RegMix results in ../shared (skipped when absent).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent

# (script, arguments): the demo run's outputs (out/demo) are made first by `metamix score`.
BENCHMARKS: list[tuple[str, list[str]]] = [
    ("heuristics_speed.py", []),
    ("score_speed.py", []),
    ("score_speed.py", ["--encoders-only"]),
    ("score_parts.py", []),
    ("select_speed.py", []),
    ("dedup.py", []),
    ("ray_scaling.py", []),
    ("heuristics_agreement.py", []),
    ("score_memory.py", []),
    ("raters_speed.py", []),
    ("model_scorers_speed.py", []),
    ("metarater_shipped.py", []),
    ("proxy_fidelity.py", []),
    ("regmix_surrogates.py", []),
    ("regmix_search.py", []),
    ("regmix_mde.py", []),
    ("mix_suggest_reuse.py", []),
]


def main() -> int:
    only = set(sys.argv[1:])
    subprocess.run([sys.executable, "-m", "metamix.cli", "score", "--config",
                    "configs/demo.yaml"], cwd=REPO, check=True)
    failed = []
    for script, args in BENCHMARKS:
        if only and script.removesuffix(".py") not in only:
            continue
        path = BENCH / script
        if not path.is_file():
            continue
        print(f"\n=== {script} ===", flush=True)
        started = time.monotonic()
        code = subprocess.run([sys.executable, str(path), *args], cwd=REPO).returncode
        print(f"=== {script}: exit {code}, {time.monotonic() - started:.0f}s ===", flush=True)
        if code != 0:
            failed.append(script)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
