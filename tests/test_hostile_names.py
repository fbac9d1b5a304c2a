"""A domain value from the data never writes outside ``out_dir``: every writer names files
through ``metamix.base.names.file_name``, and ``atomic_path`` refuses what slips past."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml

from metamix.base.atomic import confined_to, write_bytes_atomic
from metamix.base.errors import UserError
from metamix.base.names import MAX_NAME, file_name
from metamix.pipeline.selection.write import domain_file_name
from tests.conftest import REPO


def test_safe_short_names_are_themselves_and_anything_else_a_bounded_slug_and_hash() -> None:
    for name in ("web", "code", "books", "code-v2", "books.en", "_x", "A1"):
        assert file_name(name) == name
    assert domain_file_name("web") == "web.parquet"
    hostile = ["../x", "x/../../..", "/etc/passwd", "a\0b", "y" * 300, ".", "..", "", "CON",
               "con.txt", "-rf", "a.", "en/wiki", "en-wiki", "en wiki", "é"]
    names = [file_name(v) for v in hostile]
    assert len(set(names)) == len(hostile)   # distinct values, distinct names
    for value, name in zip(hostile, names, strict=True):
        assert 0 < len(name) <= MAX_NAME and "/" not in name and "\0" not in name
        assert not name.startswith((".", "-")) and name not in (".", "..")
        if value != "en-wiki":
            assert "~" in name   # a mapped name never equals a safe one
    assert file_name("../x") == "x~d6b96a97d147daaa"        # sha256("../x")[:16]
    assert file_name("en/wiki") == "en-wiki~43c75ae8127ae79a"
    assert file_name("..") == "_~5ec1f7e700f37c3d"
    assert file_name("en-wiki") == "en-wiki"


def test_atomic_path_refuses_a_destination_outside_the_run_folder(tmp_path: Path) -> None:
    run = tmp_path / "out" / "r"
    with confined_to(run):
        write_bytes_atomic(run / "a" / "ok.txt", b"1")
        for dest in (run / ".." / "escaped.txt", tmp_path / "elsewhere" / "x.txt",
                     run.parent / "r2" / "x.txt"):
            with pytest.raises(UserError, match="outside the run folder"):
                write_bytes_atomic(dest, b"1")
    assert (run / "a" / "ok.txt").read_bytes() == b"1"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "ok.txt", "out", "r"]
    write_bytes_atomic(tmp_path / "free.txt", b"1")   # no run: no confinement


def _hostile_domains(outside: Path) -> list[str]:
    return ["../../../escape-a", "x" + "/.." * 10 + str(outside / "escape-b"),
            str(outside / "escape-c"), "nul\0byte", "y" * 300, ".", "..", "CON"]


def test_hostile_domain_values_stay_inside_out_dir_through_mix_select_and_export(
        tmp_path: Path, sample_slice: Path) -> None:
    outside = tmp_path / "outside"
    domains = _hostile_domains(outside)
    table = pa.concat_tables(pq.read_table(p) for p in sorted(sample_slice.glob("*.parquet")))
    table = table.set_column(table.schema.get_field_index("domain"), "domain",
                             pa.array([domains[i % len(domains)]
                                       for i in range(table.num_rows)]))
    corpus = tmp_path / "work" / "corpus"
    corpus.mkdir(parents=True)
    pq.write_table(table, corpus / "train.parquet")
    val = pq.read_table(REPO / "data" / "sample" / "validation")
    val = val.filter(pc.is_in(val["domain"], pa.array(["web", "code"]))).slice(0, 40)
    pq.write_table(val, corpus / "validation.parquet")
    config = tmp_path / "work" / "c.yaml"
    config.write_text(yaml.safe_dump({
        "run": "h", "out_dir": "out", "seed": 0, "workers": 1, "progress": False,
        "input": {"paths": [str(corpus / "train.parquet")]},
        "validation": {"paths": [str(corpus / "validation.parquet")]},
        "tokenizer": {"vocab_size": 400, "sample_docs": 300},
        "score": {"scorers": [{"name": "redpajama"}]},
        "mix": {"n_runs": 6, "bo_rounds": 1, "bo_batch": 1, "proxy_tokens": 4000,
                "folds": 2, "n_candidates": 1000, "surrogates": ["linear"]},
        "select": {"weights": {"rps_doc_word_count": 1.0}, "mode": "token_budget",
                   "mixture_file": "out/h/mixture/weights.json"},
    }))
    before = sorted(tmp_path.rglob("*"))
    for args in (["run", "--until", "select"], ["export", "--format", "megatron"],
                 ["export", "--format", "jsonl"]):
        done = subprocess.run([sys.executable, "-m", "metamix.cli", *args, "-c", str(config)],
                              cwd=config.parent, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
    out = config.parent / "out"
    new = [p for p in sorted(tmp_path.rglob("*")) if p not in before]
    assert new and all(p.is_relative_to(out) for p in new), [
        p for p in new if not p.is_relative_to(out)]
    assert not outside.exists()
    run = out / "h"
    assert not (run / "mix" / "experts" / "expert-x").exists()
    names = {file_name(d) for d in domains}
    assert {p.name for p in (run / "selected").iterdir()} == {f"{n}.parquet" for n in names}
    assert len(list((run / "mix" / "experts").glob("expert-*.npy"))) == len(domains)
    # every training-data path a job reads stays in its folder
    for blend_file, folder in ((run / "mixture" / "megatron_data_path.txt", None),
                               (run / "export" / "megatron" / "megatron_data_path.txt",
                                run / "export" / "megatron")):
        prefixes = blend_file.read_text().split()[1::2]
        assert prefixes
        for prefix in prefixes:
            assert "/.." not in prefix and "\0" not in prefix
            if folder is not None:
                assert Path(prefix).parent == folder.resolve()
                assert Path(prefix + ".bin").is_file()
