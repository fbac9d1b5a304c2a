"""A user-style corpus through to training files: JSONL.gz and Parquet (domain from the
path) in several languages, with a document repeated across files and formats, exactly and
nearly; score → dups → select (duplicates dropped) → export (JSONL and Megatron)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console

from metamix.config import load_config
from metamix.pipeline.export import run_export
from metamix.pipeline.megatron import read_indexed_dataset
from metamix.pipeline.runner import run_score
from metamix.pipeline.selection import run_selection
from tests.conftest import write_config

QUIET = Console(quiet=True)
VOCAB = {
    "en": ["the", "river", "runs", "past", "old", "stone", "houses", "where", "people",
           "gather", "each", "evening"],
    "de": ["der", "fluss", "fließt", "an", "alten", "steinhäusern", "vorbei", "wo", "sich",
           "die", "leute", "treffen"],
    "ru": ["река", "течёт", "мимо", "старых", "каменных", "домов", "где", "люди",
           "собираются", "каждый", "вечер"],
    "ja": ["川は", "古い", "石の", "家々の", "そばを", "流れ", "人々は", "毎晩", "集まる"],
}


def _text(lang: str, seed: int, n: int = 220) -> str:
    rng = np.random.default_rng(seed)
    return " ".join(rng.choice(VOCAB[lang], n)) + "."


def test_user_corpus_dedups_across_formats_and_exports(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "manuals").mkdir(parents=True)
    jsonl = [{"id": f"j{lang}{i}", "text": _text(lang, 100 * k + i), "domain": "docs"}
             for k, lang in enumerate(VOCAB) for i in range(6)]
    repeated = jsonl[7]["text"]                               # a German document
    near = repeated.replace(repeated.split()[40], "anders", 1)  # one word changed
    rows = [{"id": f"p{i}", "text": _text("en", 900 + i), "lang": "en"} for i in range(5)]
    rows += [{"id": "p-copy", "text": "  " + repeated.upper() + "\n", "lang": "de"},
             {"id": "p-near", "text": near, "lang": "de"}]
    (data / "part.jsonl.gz").write_bytes(gzip.compress(
        b"".join(json.dumps(r).encode() + b"\n" for r in jsonl)))
    pq.write_table(pa.Table.from_pylist(rows), data / "manuals" / "m.parquet")
    shared = {"score": {"scorers": [{"name": "redpajama"}]},
              "select": {"weights": {"rps_doc_word_count": 1.0}, "fraction": 1.0}}
    cfg_a = write_config(tmp_path / "a.yaml", run="u", input={"paths": [str(data / "*.gz")]},
                         **shared)
    cfg = load_config(cfg_a, {"input.paths": [str(data / "*.gz"), str(data / "manuals")],
                              "input.domain_field": None,
                              "input.domain_from_path": r"/(?P<domain>manuals|part)"})
    run_score(cfg, QUIET)
    dups = pa.concat_tables(pq.read_table(p) for p in sorted((cfg.run_dir / "dups").glob("*")))
    by_id = {r["id"]: r for r in dups.to_pylist()}
    # run order is shard order (manuals/m.parquet plans before part.jsonl.gz): the Parquet
    # copy comes first, so it names both clusters and is the one kept
    shards = json.loads((cfg.run_dir / "_manifests" / "ingest.json").read_text())["shards"]
    assert [s["input"].split("/")[-2:] for s in shards] == [["manuals", "m.parquet"],
                                                             ["data", "part.jsonl.gz"]]
    assert {k: by_id["jde1"][k] for k in ("dup_exact_cluster", "dup_exact_keep")} == {
        "dup_exact_cluster": "p-copy", "dup_exact_keep": False}
    assert by_id["p-copy"]["dup_exact_keep"] and by_id["p-copy"]["dup_near_keep"]
    # upper-casing turned "fließt" into "FLIESST": the same text once case-folded (exact),
    # other words once lower-cased (MinHash); an exact duplicate still joins the near cluster
    assert by_id["jde1"]["dup_near_cluster"] == "p-copy"
    assert by_id["p-near"]["dup_exact_cluster"] is None
    assert (by_id["p-near"]["dup_near_cluster"], by_id["p-near"]["dup_near_keep"]) == (
        "p-copy", False)
    # the four languages' vocabularies share no word: nothing else is a duplicate
    assert sum(r["dup_near_cluster"] is not None for r in by_id.values()) == 3

    summary = run_selection(cfg.select, sorted((cfg.run_dir / "scored").glob("*.parquet")),
                            cfg.run_dir, progress=False)
    assert summary["totals"]["dropped_docs"] == {"duplicate_exact": 1, "duplicate_near": 1}
    assert summary["totals"]["docs_after"] == 24 + 5

    out = run_export(cfg, QUIET, "jsonl", shard_docs=100)
    exported = [json.loads(x) for x in (out / "part-00000.jsonl").read_text().splitlines()]
    assert {r["id"] for r in exported} == ({r["id"] for r in jsonl} - {"jde1"}) | {
        f"p{i}" for i in range(5)} | {"p-copy"}
    assert {r["domain"] for r in exported} == {"part", "manuals"}
    mega = run_export(cfg, QUIET, "megatron")
    docs = read_indexed_dataset(mega / "manuals_text_document")
    assert len(docs) == 6
    blend = (mega / "megatron_data_path.txt").read_text().split()
    assert len(blend) == 4 and abs(float(blend[0]) + float(blend[2]) - 1) < 1e-5
