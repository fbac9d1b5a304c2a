"""Data folders hold data only, so the usual loaders read them as they are.

Manifests used to sit in ``scored/_manifest.json`` and ``scored/_manifest/``, and
``datasets.load_dataset("parquet", data_dir=...)`` failed on them; they now live in
``<run>/_manifests/``, and a run an older metamix wrote is adopted on its next rerun.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from rich.console import Console

from metamix.config import load_config
from metamix.pipeline.runner import run_score
from metamix.pipeline.selection import SelectConfig, run_selection
from tests.conftest import PROSE, write_config, write_jsonl

QUIET = Console(quiet=True)


@pytest.fixture
def selected_run(tmp_path: Path) -> tuple[Path, int]:
    data = tmp_path / "data"
    data.mkdir()
    for s, domain in enumerate(["web", "books", "web"]):
        write_jsonl(data / f"part{s}.jsonl", [
            {"id": f"{s}-{i}", "text": f"{PROSE} Note {i} of file {s}.\n" * (1 + i % 4),
             "domain": domain} for i in range(40)])
    cfg = load_config(write_config(tmp_path / "c.yaml", input={"paths": [str(data)]},
                                   score={"scorers": [{"name": "redpajama"}]},
                                   dedup={"exact": False, "near": False}))
    run_score(cfg, QUIET)
    run_selection(SelectConfig(weights={"rps_doc_word_count": 1.0}, fraction=0.5),
                  sorted((cfg.run_dir / "scored").glob("*.parquet")), cfg.run_dir,
                  progress=False)
    return cfg.run_dir, 120


def test_scored_and_selected_load_with_datasets_pandas_and_duckdb(
        selected_run: tuple[Path, int], tmp_path: Path) -> None:
    import datasets

    run, n_docs = selected_run
    for folder, rows in (("scored", n_docs), ("selected", n_docs // 2)):
        path = run / folder
        assert {p.suffix for p in path.iterdir()} == {".parquet"}   # nothing but data
        loaded = datasets.load_dataset("parquet", data_dir=str(path), split="train",
                                       cache_dir=str(tmp_path / "hf"))
        assert loaded.num_rows == rows
        assert len(pd.read_parquet(path)) == rows
        count = duckdb.sql(f"SELECT COUNT(*) FROM read_parquet('{path}/**')").fetchall()[0][0]
        assert count == rows
    assert sorted(p.name for p in (run / "_manifests").glob("*.json")) == [
        "ingest.json", "scored.json"]
    assert len(list((run / "_manifests" / "scored").glob("part-*.json"))) == 3


def test_a_run_with_manifests_inside_its_data_folders_resumes_and_moves_them(
        selected_run: tuple[Path, int], tmp_path: Path) -> None:
    run, _ = selected_run
    before = {p: p.read_bytes() for p in sorted(run.rglob("*.parquet"))}
    for stage in ("ingest", "scored"):                  # the layout an older metamix wrote
        os.replace(run / "_manifests" / f"{stage}.json", run / stage / "_manifest.json")
        shutil.move(run / "_manifests" / stage, run / stage / "_manifest")
    cfg = load_config(tmp_path / "c.yaml")
    reports = {r.stage: r for r in run_score(cfg, QUIET)}
    assert reports["ingest"].skipped == reports["scored"].skipped == 3   # resumed, not redone
    assert not list((run / "scored").glob("_manifest*"))
    assert not list((run / "ingest").glob("_manifest*"))
    assert (run / "_manifests" / "scored.json").is_file()
    assert {p: p.read_bytes() for p in sorted(run.rglob("*.parquet"))} == before
