"""The `metamix` CLI end to end on a small slice of the bundled corpus."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import yaml

from tests.conftest import REPO


def _metamix(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "metamix.cli", *args], cwd=cwd, text=True,
                          capture_output=True, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin"})


def _slice_config(tmp_path: Path, sample_slice: Path) -> Path:
    demo = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    demo.update(run="slice", out_dir=str(tmp_path / "out"), workers=2,
                input={"paths": [str(sample_slice / "*.parquet")]},
                tokenizer={"vocab_size": 1000, "sample_docs": 500})
    demo.pop("validation", None)
    # hand-set weights: the demo's learned weights file comes from `metamix metarater`
    demo["select"] = {"weights": {"rps_doc_frac_unique_words": 1.0, "prrc_cleanliness": 1.0,
                                  "rps_doc_frac_no_alph_words": -1.0},
                      "mode": "top_fraction", "fraction": 0.5, "per_domain": True}
    path = tmp_path / "slice.yaml"
    path.write_text(yaml.safe_dump(demo))
    return path


def test_score_then_select_on_the_bundled_corpus(tmp_path: Path, sample_slice: Path) -> None:
    config = _slice_config(tmp_path, sample_slice)
    result = _metamix("run", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "read" in result.stderr and "quarantined" in result.stderr
    run_dir = tmp_path / "out" / "slice"
    scored = pq.read_table(sorted((run_dir / "scored").glob("*.parquet")))
    n_in = sum(pq.ParquetFile(p).metadata.num_rows for p in sample_slice.glob("*.parquet"))
    assert scored.num_rows == n_in  # the bundled corpus has no bad rows
    for column in ("n_tokens", "rps_doc_word_count", "gopher_quality_drop_reason",
                   "gopher_repetition_drop_reason", "c4_drop_reason", "fineweb_drop_reason"):
        assert column in scored.column_names
    summary = json.loads((run_dir / "selection_summary.json").read_text())
    selected = pq.read_table(sorted((run_dir / "selected").glob("*.parquet")))
    assert 0 < selected.num_rows < n_in
    assert summary["totals"]["docs_after"] == selected.num_rows


def test_user_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("input:\n  paths: [x.jsonl]\n  txt_field: body\n")
    result = _metamix("score", "--config", str(bad), cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == f"error: {bad}: input.txt_field: unknown key"
    result = _metamix("score", "--config", str(tmp_path / "missing.yaml"), cwd=tmp_path)
    assert result.returncode == 2 and "config file not found" in result.stderr
    result = _metamix("select", "--config", str(bad), "--set", "nokey", cwd=tmp_path)
    assert result.returncode == 2 and "expected KEY=VALUE" in result.stderr
