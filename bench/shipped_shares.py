"""Chosen vs emitted vs shipped domain shares of a finished run (mix, then select).

    .venv/bin/python bench/shipped_shares.py out/demo

Reads ``mixture/weights.json`` (``chosen_weights``: the mixture chosen; ``weights``: what
select is asked to ship), ``mixture/megatron_data_path.txt``, the ``TOKEN_SHARES`` of
``mixture/interleave_datasets.py`` and ``selection_summary.json`` (each domain's kept
tokens: the shipped shares), prints them side by side and the largest gap, in points,
between what ships and what each artefact says.
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path


def _blend(path: Path) -> dict[str, float]:
    parts = path.read_text().split()
    return {Path(p).name.removesuffix("_text_document"): float(w)
            for w, p in zip(parts[0::2], parts[1::2], strict=True)}


def _snippet_shares(path: Path) -> dict[str, float]:
    for node in ast.parse(path.read_text()).body:
        if (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id == "TOKEN_SHARES"):
            return ast.literal_eval(node.value)
    return {}


def main(run_dir: Path) -> None:
    mixture = json.loads((run_dir / "mixture" / "weights.json").read_text())
    summary = json.loads((run_dir / "selection_summary.json").read_text())
    kept = {d: e["tokens_after"] for d, e in summary["domains"].items()}
    total = sum(kept.values())
    shipped = {d: t / total for d, t in kept.items()}
    columns = {
        "chosen": mixture.get("chosen_weights", mixture["weights"]),
        "weights.json": mixture["weights"],
        "megatron_data_path": _blend(run_dir / "mixture" / "megatron_data_path.txt"),
        "interleave": _snippet_shares(run_dir / "mixture" / "interleave_datasets.py"),
        "shipped": shipped,
    }
    print(f"{'domain':<12}" + "".join(f"{c:>20}" for c in columns))
    for d in sorted(kept):
        print(f"{d:<12}" + "".join(f"{100 * col.get(d, 0.0):>19.2f}%" for col in
                                   columns.values()))
    print(f"shipped {total:,} tokens; the mixture's total_tokens {mixture['total_tokens']:,}"
          f" (chosen {mixture.get('chosen_total_tokens', mixture['total_tokens']):,})")
    for name, col in columns.items():
        if name != "shipped":
            gap = max(abs(col.get(d, 0.0) - s) for d, s in shipped.items())
            print(f"largest gap shipped vs {name}: {100 * gap:.3f} points")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "out/demo"))
