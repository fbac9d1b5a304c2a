"""``metamix export``: sharded, seeded-shuffled JSONL/Parquet and Megatron indexed datasets."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rich.console import Console

from metamix.cli import main
from metamix.config import load_config
from metamix.pipeline.export import run_export
from metamix.pipeline.megatron import IndexedDatasetWriter, read_indexed_dataset
from metamix.pipeline.runner import run_score
from metamix.pipeline.selection import run_selection
from tests.conftest import PROSE, write_config, write_jsonl

QUIET = Console(quiet=True)


def test_indexed_dataset_bytes_match_the_megatron_layout(tmp_path: Path) -> None:
    with IndexedDatasetWriter(tmp_path / "d_text_document", np.uint16) as writer:
        writer.add_document(np.array([1, 2, 3]))
        writer.add_document(np.array([65000]))
    idx = (b"MMIDIDX\x00\x00" + struct.pack("<Q", 1) + bytes([8])   # version 1, uint16
           + struct.pack("<QQ", 2, 3)                                # 2 sequences, 3 doc idx
           + struct.pack("<2i", 3, 1) + struct.pack("<2q", 0, 6)     # lengths, byte offsets
           + struct.pack("<3q", 0, 1, 2))                            # document indices
    assert (tmp_path / "d_text_document.idx").read_bytes() == idx
    assert (tmp_path / "d_text_document.bin").read_bytes() == struct.pack("<4H", 1, 2, 3, 65000)
    docs = read_indexed_dataset(tmp_path / "d_text_document")
    assert [d.tolist() for d in docs] == [[1, 2, 3], [65000]]
    assert not list(tmp_path.glob(".*"))                               # no temporary left


@pytest.fixture(scope="module")
def selected_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("export")
    data = root / "data"
    data.mkdir()
    rows = [{"id": f"{d}-{i}", "text": f"{PROSE} {d} note {i}: " + "word " * (i * 7 % 40),
             "domain": d} for d in ("web", "books", "code") for i in range(30)]
    write_jsonl(data / "a.jsonl", rows)
    config = write_config(root / "c.yaml", input={"paths": [str(data)]},
                          score={"scorers": [{"name": "redpajama"}]},
                          dedup={"exact": False, "near": False},
                          select={"weights": {"rps_doc_word_count": 1.0}, "fraction": 0.5,
                                  "per_domain": True})
    cfg = load_config(config)
    run_score(cfg, QUIET)
    run_selection(cfg.select, sorted((cfg.run_dir / "scored").glob("*.parquet")), cfg.run_dir,
                  progress=False)
    return config


def _selected(run_dir: Path) -> pa.Table:
    return pa.concat_tables(pq.read_table(p) for p in sorted((run_dir / "selected").glob("*")))


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_shards_hold_every_selected_document_once_shuffled_by_seed(
        selected_run: Path, fmt: str, tmp_path: Path) -> None:
    cfg = load_config(selected_run)
    selected = _selected(cfg.run_dir)
    out = run_export(cfg, QUIET, fmt, tmp_path / "a", shard_docs=10)
    parts = sorted(out.glob("part-*"))
    assert [p.name for p in parts] == [f"part-{i:05d}.{fmt}" for i in range(5)]   # 45 docs
    if fmt == "jsonl":
        rows = [json.loads(line) for p in parts for line in p.read_text().splitlines()]
    else:
        rows = pa.concat_tables(pq.read_table(p) for p in parts).to_pylist()
    assert set(rows[0]) == {"id", "text", "domain", "source"}
    ids = [r["id"] for r in rows]
    assert sorted(ids) == sorted(selected.column("id").to_pylist()) and len(set(ids)) == 45
    assert ids != selected.column("id").to_pylist()                 # shuffled across domains
    assert len({r["domain"] for r in rows[:10]}) > 1
    again = run_export(cfg, QUIET, fmt, tmp_path / "b", shard_docs=10)
    assert [p.read_bytes() for p in parts] == [p.read_bytes() for p in sorted(again.glob("p*"))]
    reseeded = run_export(load_config(selected_run, {"seed": 1}), QUIET, fmt, tmp_path / "c",
                          shard_docs=10)
    assert parts[0].read_bytes() != sorted(reseeded.glob("part-*"))[0].read_bytes()


def _megatron_reader() -> type | None:
    try:
        from megatron.core.datasets.indexed_dataset import IndexedDataset
    except ImportError:    # the dev extra installs megatron-core; our reader checks anyway
        return None
    return IndexedDataset


def test_megatron_export_reads_back_with_the_runs_tokens_and_token_share_blend(
        selected_run: Path, tmp_path: Path) -> None:
    from tokenizers import Tokenizer

    cfg = load_config(selected_run)
    selected = _selected(cfg.run_dir)
    out = run_export(cfg, QUIET, "megatron", tmp_path / "m")
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{d}_text_document.{s}" for d in ("books", "code", "web") for s in ("bin", "idx")]
        + ["megatron_data_path.txt"])
    tok = Tokenizer.from_file(str(cfg.run_dir / "tokenizer.json"))
    reader = _megatron_reader()
    shares = {}
    for domain in ("books", "code", "web"):
        mine = selected.filter(pa.compute.equal(selected.column("domain"), domain))
        docs = read_indexed_dataset(out / f"{domain}_text_document")
        assert len(docs) == mine.num_rows == 15
        assert sum(len(d) for d in docs) == sum(mine.column("n_tokens").to_pylist())
        texts = {tok.decode(d.tolist()) for d in docs}
        assert texts == set(mine.column("text").to_pylist())          # every document once
        if reader is not None:
            theirs = reader(str(out / f"{domain}_text_document"))
            assert len(theirs) == 15
            assert all(np.array_equal(theirs[i], docs[i]) for i in range(15))
        shares[domain] = sum(mine.column("n_tokens").to_pylist())
    total = sum(shares.values())
    parts = (out / "megatron_data_path.txt").read_text().split()
    blend = dict(zip(parts[1::2], map(float, parts[0::2]), strict=True))
    assert blend == pytest.approx({str((out / f"{d}_text_document").resolve()): n / total
                                   for d, n in shares.items()}, abs=1e-6)


def test_cli_export_and_its_errors(selected_run: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "-c", str(selected_run), "--format", "jsonl", "--out",
                 str(tmp_path / "j"), "--columns", "id,n_tokens"]) == 0
    first = json.loads((tmp_path / "j" / "part-00000.jsonl").read_text().splitlines()[0])
    assert set(first) == {"id", "n_tokens"}
    assert main(["export", "-c", str(selected_run), "--format", "jsonl", "--out",
                 str(tmp_path / "k"), "--columns", "id,nope"]) == 2
    assert "no column 'nope'" in capsys.readouterr().err
    assert main(["export", "-c", str(selected_run), "--format", "megatron", "--out",
                 str(tmp_path / "m"), "--eod-token", "<|nope|>"]) == 2
    empty = write_config(tmp_path / "e.yaml", input={"paths": [str(tmp_path)]})
    assert main(["export", "-c", str(empty), "--format", "parquet"]) == 2
    assert "run `metamix select`" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["jsonl", "megatron"])
def test_progress_bar_shows_megabytes_and_docs_per_second(
        selected_run: Path, fmt: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bar said "0.0 MB 0 docs/s" to the end (issue 29): it shows the bytes written
    (shards; Megatron's token files) and the documents per second."""
    import re

    import metamix.pipeline.export as export

    bars = []

    def spy(console: Console, enabled: bool):
        bars.append(make(console, enabled))
        return bars[-1]

    make = export.make_progress
    monkeypatch.setattr(export, "make_progress", spy)
    cfg = load_config(selected_run).model_copy(update={"progress": True})
    console = Console(record=True, width=200, force_terminal=False)
    out = run_export(cfg, console, fmt, tmp_path / fmt, shard_docs=10)
    files = out.glob("part-*") if fmt == "jsonl" else out.glob("*_document.bin")
    written = sum(p.stat().st_size for p in files)
    [task] = bars[0].tasks
    assert written > 1000 and task.fields["mb"] == pytest.approx(written / 1e6, rel=1e-12)
    line = next(x for x in console.export_text().splitlines() if x.startswith("export"))
    assert int(re.search(r"(\d+) docs/s", line).group(1)) > 0
