"""A user's own corpus end to end through the CLI: nested JSONL.gz, a `save_to_disk` folder
and Parquet with struct columns and a path domain, several languages, kept user fields
(one of them the user's own score), a scorer of the user's own and a `select.where`."""

from __future__ import annotations

import gzip
import json
import math
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from metamix.cli import main

SENTENCES = {
    "en": "The parser reads the file and reports every error with its line number.",
    "de": "Der Parser liest die Datei und meldet jeden Fehler mit seiner Zeilennummer.",
    "fr": "L'analyseur lit le fichier et signale chaque erreur avec son numéro de ligne.",
    "es": "El analizador lee el archivo e informa cada error con su número de línea.",
}
USER_SCORER = '''
import pyarrow as pa
from metamix.scorers.base import Scorer


class DigitScorer(Scorer):
    name = "digits"
    column_directions = {"digits_count": "neutral"}

    def output_schema(self) -> pa.Schema:
        return pa.schema([("digits_count", pa.int64())])

    def score(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        counts = [sum(c.isdigit() for c in t) for t in batch.column("text").to_pylist()]
        return {"digits_count": pa.array(counts, pa.int64())}
'''


def _doc(prefix: str, i: int, lang: str, kind: str | None) -> dict:
    body = " ".join(f"{SENTENCES[lang]} ({prefix} {i}.{j})" for j in range(3 + i % 4))
    meta = {"lang": lang, "url": f"https://example.org/{prefix}/{i}",
            "quality": round((i * 7 % 23) / 23 + 0.001 * len(prefix), 4)}
    if kind:
        meta["kind"] = kind
    return {"uid": f"{prefix}-{i}", "body": body, "meta": meta}


def _docs(prefix: str, n: int, kind: str | None) -> list[dict]:
    langs = list(SENTENCES)
    return [_doc(prefix, i, langs[i % len(langs)], kind) for i in range(n)]


@pytest.fixture
def user_corpus(tmp_path: Path) -> dict[str, list[dict]]:
    import datasets

    corpus = tmp_path / "corpus"
    (corpus / "jsonl").mkdir(parents=True)
    (corpus / "parquet" / "readme").mkdir(parents=True)
    man = _docs("man", 16, "man")
    with gzip.open(corpus / "jsonl" / "man.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(d) + "\n" for d in man)
    docstrings = _docs("doc", 12, "docstring")
    datasets.Dataset.from_list(docstrings).save_to_disk(str(corpus / "saved"))
    readmes = _docs("readme", 12, None)          # the domain comes from the path
    pq.write_table(pa.Table.from_pylist(readmes), corpus / "parquet" / "readme" / "p.parquet")
    (tmp_path / "user_digits.py").write_text(textwrap.dedent(USER_SCORER))
    return {"man": man, "docstring": docstrings, "readme": readmes}


def test_score_and_select_a_user_corpus(tmp_path: Path, user_corpus: dict,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)            # user_digits.py sits in the folder we run from
    config = {
        "run": "mine", "out_dir": "out", "workers": 2, "progress": False,
        "input": {"paths": ["corpus"], "text_field": "body", "id_field": "uid",
                  "domain_field": "meta.kind",
                  "domain_from_path": "/parquet/(?P<domain>[a-z]+)/",
                  "keep_fields": {"lang": "meta.lang", "url": "meta.url",
                                  "quality": "meta.quality"},
                  "score_fields": {"quality": "higher"}},
        "tokenizer": {"vocab_size": 300, "sample_docs": 200},
        "score": {"scorers": [{"name": "redpajama"},
                              {"name": "digits", "import": "user_digits"}]},
        "select": {"weights": {"quality": 1.0}, "where": "lang IN ('en', 'de')",
                   "fraction": 0.5, "per_domain": True},
    }
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(config))
    assert main(["score", "--config", "mine.yaml"]) == 0
    assert main(["select", "--config", "mine.yaml"]) == 0

    run_dir = tmp_path / "out" / "mine"
    scored = pq.read_table(sorted((run_dir / "scored").glob("*.parquet")))
    everything = {d["uid"]: (domain, d) for domain, docs in user_corpus.items() for d in docs}
    assert sorted(scored.column("id").to_pylist()) == sorted(everything)
    for row in scored.to_pylist():
        domain, doc = everything[row["id"]]
        assert (row["domain"], row["lang"], row["url"], row["quality"]) == (
            domain, doc["meta"]["lang"], doc["meta"]["url"], doc["meta"]["quality"])
        assert row["digits_count"] == sum(c.isdigit() for c in doc["body"])
        assert row["rps_doc_word_count"] > 0

    summary = json.loads((run_dir / "selection_summary.json").read_text())
    for domain, docs in user_corpus.items():
        wanted = sorted((d for d in docs if d["meta"]["lang"] in ("en", "de")),
                        key=lambda d: (-d["meta"]["quality"], d["uid"]))
        keep = wanted[: math.ceil(len(wanted) / 2)]
        got = pq.read_table(run_dir / "selected" / f"{domain}.parquet")
        assert got.column("id").to_pylist() == [d["uid"] for d in keep]
        assert got.column("url").to_pylist() == [d["meta"]["url"] for d in keep]
        assert summary["domains"][domain]["dropped_docs"]["where"] == len(docs) - len(wanted)
    assert summary["totals"]["docs_before"] == len(everything)
