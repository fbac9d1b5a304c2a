"""Ingest: every format, every bad-record reason, and config errors naming file and key."""

from __future__ import annotations

import gzip
import json
import time
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from rich.console import Console

from metamix.base.errors import UserError
from metamix.config import load_config
from metamix.pipeline.ingest import content_id
from metamix.pipeline.runner import run_score
from metamix.pipeline.streams import lines
from tests.conftest import write_config, write_jsonl

QUIET = Console(quiet=True)
NO_SCORERS = {"scorers": []}


def _docs(prefix: str, n: int, domain: str = "web") -> list[dict[str, str]]:
    return [{"id": f"{prefix}{i}", "text": f"Text {i} of {prefix}. More words follow here.",
             "domain": domain} for i in range(n)]


def _score(cfg_path: Path):
    cfg = load_config(cfg_path)
    reports = run_score(cfg, QUIET)
    return cfg, {r.stage: r.totals for r in reports}


def _read(cfg, stage: str) -> pa.Table:
    return pq.read_table(sorted((cfg.run_dir / stage).glob("*.parquet")))


def _quarantine(cfg) -> pa.Table:
    files = sorted((cfg.run_dir / "quarantine").glob("*.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files])


def test_bad_records_are_quarantined_with_reasons(tmp_path: Path) -> None:
    rows = _docs("a", 5) + [
        b"{not json",
        b'{"id": "bad-bytes", "text": "caf\xe9", "domain": "web"}',
        {"id": "empty", "text": "   \n", "domain": "web"},
        {"id": "number", "text": 42, "domain": "web"},
        {"id": "none", "text": None, "domain": "web"},
        {"id": "a1", "text": "same id as an earlier row", "domain": "web"},
        {"id": "", "text": "no id", "domain": "web"},
        {"id": "nodomain", "text": "no domain"},
        "[1, 2, 3]",
        '{"id": "surrogate", "text": "\\ud800 lone", "domain": "web"}',
    ]
    write_jsonl(tmp_path / "in.jsonl", rows)
    cfg, totals = _score(write_config(tmp_path / "c.yaml", input={
        "paths": [str(tmp_path / "in.jsonl")], "max_quarantine_fraction": 1.0},
        score=NO_SCORERS))
    ingest = totals["ingest"]
    assert ingest.read == 15
    assert ingest.written == 5
    assert dict(ingest.quarantined) == {
        # orjson rejects the lone surrogate escape, so that line is invalid JSON
        "invalid_json": 2, "undecodable_bytes": 1, "empty_text": 1, "text_not_string": 1,
        "missing_text": 1, "duplicate_id": 1, "missing_id": 1, "missing_domain": 1,
        "not_an_object": 1,
    }
    q = _quarantine(cfg)
    assert q.num_rows == 10
    by_reason = {}
    for r in q.to_pylist():
        by_reason.setdefault(r["reason"], r)  # first of each reason, in input order
    assert by_reason["invalid_json"]["row"] == 5
    assert by_reason["invalid_json"]["detail"] == "{not json"
    assert by_reason["duplicate_id"]["id"] == "a1"
    assert by_reason["text_not_string"]["stage"] == "ingest"
    assert by_reason["text_not_string"]["detail"] == "int: 42"
    kept = _read(cfg, "ingest")
    assert kept.column("id").to_pylist() == [f"a{i}" for i in range(5)]


def test_cross_shard_and_validation_duplicates(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "t1.jsonl", _docs("a", 4))
    write_jsonl(tmp_path / "t2.jsonl", _docs("a", 2) + _docs("b", 3))  # a0, a1 repeat t1
    write_jsonl(tmp_path / "v.jsonl", [{"id": "b2", "text": "validation doc", "domain": "web"}])
    cfg, totals = _score(write_config(
        tmp_path / "c.yaml", input={"paths": [str(tmp_path / "t*.jsonl")]},
        validation={"paths": [str(tmp_path / "v.jsonl")]}, score=NO_SCORERS))
    assert totals["ingest"].written == 9  # duplicates across files are only seen globally
    assert dict(totals["scored"].quarantined) == {"duplicate_id": 3}
    scored_ids = sorted(_read(cfg, "scored").column("id").to_pylist())
    assert scored_ids == ["a0", "a1", "a2", "a3", "b0", "b1"]  # b2 belongs to validation
    assert _read(cfg, "validation").column("id").to_pylist() == ["b2"]
    assert totals["scored"].read == totals["scored"].written + 3


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".jsonl.zst", ".parquet"])
def test_formats_give_the_same_rows(tmp_path: Path, suffix: str) -> None:
    docs = _docs("d", 7, domain="books")
    path = tmp_path / f"input{suffix}"
    payload = b"".join(json.dumps(d).encode() + b"\n" for d in docs)
    if suffix == ".jsonl":
        path.write_bytes(payload)
    elif suffix == ".jsonl.gz":
        path.write_bytes(gzip.compress(payload))
    elif suffix == ".jsonl.zst":
        path.write_bytes(zstandard.ZstdCompressor().compress(payload))
    else:
        pq.write_table(pa.Table.from_pylist(docs), path)
    cfg, totals = _score(write_config(tmp_path / "c.yaml", input={"paths": [str(path)]},
                                      score=NO_SCORERS))
    table = _read(cfg, "scored")
    assert table.column("id").to_pylist() == [d["id"] for d in docs]
    assert table.column("text").to_pylist() == [d["text"] for d in docs]
    assert set(table.column("domain").to_pylist()) == {"books"}
    assert table.column("source").to_pylist() == ["input"] * 7  # file stem when no field
    assert all(n > 0 for n in table.column("n_tokens").to_pylist())


@pytest.mark.parametrize("kind", ["hf_disk", "hf_json", "hf_parquet"])
def test_datasets_inputs(tmp_path: Path, kind: str) -> None:
    import datasets  # a core dependency: this test must run, never skip
    docs = _docs("h", 6, domain="qa")
    if kind == "hf_disk":
        path = tmp_path / "saved"
        datasets.Dataset.from_list(docs).save_to_disk(str(path))
    elif kind == "hf_json":
        path = write_jsonl(tmp_path / "data.jsonl", docs)
    else:
        path = tmp_path / "data.parquet"
        pq.write_table(pa.Table.from_pylist(docs), path)
    cfg, totals = _score(write_config(
        tmp_path / "c.yaml", input={"paths": [str(path)], "format": kind, "rows_per_shard": 4},
        score=NO_SCORERS))
    assert _read(cfg, "scored").column("id").to_pylist() == [d["id"] for d in docs]
    assert totals["ingest"].read == 6


def test_content_hash_ids_and_domain_from_path(tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    rows = [{"body": "print('hello')"}, {"body": "print('hello')"}, {"body": "x = 1"}]
    write_jsonl(tmp_path / "code" / "part.jsonl", rows)
    cfg, totals = _score(write_config(
        tmp_path / "c.yaml",
        input={"paths": [str(tmp_path / "code")], "text_field": "body", "id_field": None,
               "domain_field": None, "domain_from_path": r"/(?P<domain>[a-z]+)/part"},
        score=NO_SCORERS))
    table = _read(cfg, "scored")
    assert table.column("id").to_pylist() == [content_id("print('hello')"), content_id("x = 1")]
    assert table.column("domain").to_pylist() == ["code", "code"]
    assert dict(totals["ingest"].quarantined) == {"duplicate_id": 1}  # exact duplicate text


def test_missing_parquet_column_names_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    pq.write_table(pa.Table.from_pylist([{"id": "1", "body": "t", "domain": "web"}]), path)
    cfg = load_config(write_config(tmp_path / "c.yaml", input={"paths": [str(path)]}))
    with pytest.raises(UserError, match=r"x\.parquet: input\.text_field = 'text' is not a col"):
        run_score(cfg, QUIET)


def test_jsonl_without_the_text_key_is_a_config_error(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "y.jsonl", [{"id": "1", "body": "t", "domain": "web"}])
    cfg = load_config(write_config(tmp_path / "c.yaml", input={"paths": [str(path)]},
                                   score=NO_SCORERS))
    with pytest.raises(UserError, match=r"y\.jsonl: input\.text_field = 'text' is in no rec"):
        run_score(cfg, QUIET)


def test_unmatched_glob_and_corrupt_files(tmp_path: Path) -> None:
    cfg = load_config(write_config(tmp_path / "c.yaml", input={"paths": ["nope/*.jsonl"]}))
    with pytest.raises(UserError, match="nothing matches 'nope/\\*.jsonl'"):
        run_score(cfg, QUIET)
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    cfg = load_config(write_config(tmp_path / "c2.yaml",
                                   input={"paths": [str(tmp_path / "bad.parquet")]}))
    with pytest.raises(UserError, match="bad.parquet: not a readable Parquet file"):
        run_score(cfg, QUIET)
    (tmp_path / "bad.jsonl.gz").write_bytes(b"not gzip")
    cfg = load_config(write_config(tmp_path / "c3.yaml",
                                   input={"paths": [str(tmp_path / "bad.jsonl.gz")]}))
    with pytest.raises(UserError, match="bad.jsonl.gz: gzip stream cut short or corrupt"):
        run_score(cfg, QUIET)


def test_invalid_utf8_in_a_parquet_string_column_is_quarantined_per_row(
        tmp_path: Path) -> None:
    texts = [f"Document {i} says something in plain words.".encode() for i in range(10)]
    texts[3] = b"bad \xff\xfe bytes"
    texts[7] = b"cut \xc3( sequence"
    domains = [b"web"] * 9 + [b"w\xffb"]

    def utf8(values: list[bytes]) -> pa.Array:   # Parquet stores them unchecked
        return pa.array(values, pa.binary()).view(pa.string())

    pq.write_table(pa.table({"id": [f"u{i}" for i in range(10)], "text": utf8(texts),
                             "domain": utf8(domains)}), tmp_path / "in.parquet")
    config = write_config(tmp_path / "c.yaml", input={"paths": [str(tmp_path / "in.parquet")]},
                          score=NO_SCORERS)
    cfg, totals = _score(config)
    assert totals["ingest"].written == 7
    assert totals["ingest"].quarantined == {"undecodable_bytes": 3}
    assert totals["scored"].written == 7
    bad = _quarantine(cfg).to_pylist()
    assert [(r["row"], r["reason"]) for r in bad] == [
        (3, "undecodable_bytes"), (7, "undecodable_bytes"), (9, "undecodable_bytes")]
    assert bad[0]["detail"] == "column 'text' is not valid UTF-8: b'bad \\xff\\xfe bytes'"
    assert bad[2]["detail"].startswith("column 'domain' is not valid UTF-8")
    assert _read(cfg, "scored").column("id").to_pylist() == [
        f"u{i}" for i in (0, 1, 2, 4, 5, 6, 8)]


def test_a_corrupt_zstd_page_in_parquet_names_the_file_and_row_group(tmp_path: Path) -> None:
    texts = [f"Document {i} says something in plain words. " * 20 for i in range(400)]
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": [f"z{i}" for i in range(400)], "text": texts,
                             "domain": ["web"] * 400}), path, compression="zstd",
                   row_group_size=100)
    chunk = pq.ParquetFile(path).metadata.row_group(2).column(1)
    data = bytearray(path.read_bytes())
    start = chunk.data_page_offset
    frame = data.find(b"\x28\xb5\x2f\xfd", start, start + chunk.total_compressed_size)
    assert frame > 0   # the zstd frame of a page of row group 2
    for i in range(frame + 4, frame + 60):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    cfg = load_config(write_config(tmp_path / "c.yaml", input={"paths": [str(path)]},
                                   score=NO_SCORERS))
    with pytest.raises(UserError, match=r"in\.parquet: row group 2 of 4 \(rows 200-299\): "
                                        r"cannot read: .*ZSTD.*; the file is corrupt"):
        run_score(cfg, QUIET)


def test_a_0_byte_input_is_a_shard_of_no_rows_whatever_its_format(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", _docs("a", 2))
    empties = ["empty.parquet", "empty.jsonl", "empty.jsonl.gz"]
    for name in empties:
        (tmp_path / name).write_bytes(b"")
    config = write_config(tmp_path / "c.yaml", input={"paths": [
        str(tmp_path / n) for n in ["a.jsonl", *empties]]}, score=NO_SCORERS)
    cfg, totals = _score(config)
    assert totals["ingest"].read == 2 and totals["ingest"].written == 2
    assert len(list((cfg.run_dir / "ingest").glob("*.parquet"))) == 4   # one per input


# --- damaged files and odd line endings (regressions: each read silently lost rows) ---------


def _zst_frames(rows: list[dict], n_frames: int) -> bytes:
    lines = [json.dumps(r).encode() + b"\n" for r in rows]
    per = len(lines) // n_frames
    cctx = zstandard.ZstdCompressor()
    return b"".join(cctx.compress(b"".join(lines[i * per:(i + 1) * per]))
                    for i in range(n_frames))


@pytest.mark.parametrize("cut", ["second_frame_missing_tail", "mid_first_frame"])
def test_truncated_zst_is_an_error_naming_file_and_offset(tmp_path: Path, cut: str) -> None:
    data = _zst_frames(_docs("z", 200), 2)
    first_frame = len(zstandard.ZstdCompressor().compress(
        b"".join(json.dumps(r).encode() + b"\n" for r in _docs("z", 200)[:100])))
    data = data[:-7] if cut == "second_frame_missing_tail" else data[: first_frame // 2]
    path = tmp_path / "in.jsonl.zst"
    path.write_bytes(data)
    config = write_config(tmp_path / "c.yaml", input={"paths": [str(path)]}, score=NO_SCORERS)
    with pytest.raises(UserError, match=r"in\.jsonl\.zst: .* at byte \d+"):
        _score(config)


def test_truncated_input_can_be_quarantined_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl.zst"
    path.write_bytes(_zst_frames(_docs("z", 200), 2)[:-7])
    config = write_config(tmp_path / "c.yaml", input={"paths": [str(path)],
                                                      "on_truncated": "quarantine"},
                          score=NO_SCORERS)
    cfg, totals = _score(config)
    ingest = totals["ingest"]
    assert ingest.written >= 100 and ingest.quarantined["truncated_input"] == 1
    assert ingest.read == ingest.written + sum(ingest.quarantined.values())
    reasons = _quarantine(cfg).column("reason").to_pylist()
    assert "truncated_input" in reasons


def _gz_flushed(lines: list[bytes]) -> tuple[bytes, list[int]]:
    """One gzip member, sync-flushed after each line: (bytes, offset where line i's flush
    ends). Cut a few bytes past line k's flush point, exactly lines 0..k are whole."""
    comp = zlib.compressobj(6, zlib.DEFLATED, 31)
    data, ends = b"", []
    for line in lines:
        data += comp.compress(line) + comp.flush(zlib.Z_SYNC_FLUSH)
        ends.append(len(data))
    return data + comp.flush(), ends


@pytest.mark.parametrize("k", [0, 11, 25, 38])
def test_a_cut_gz_keeps_every_whole_line_before_the_cut(tmp_path: Path, k: int) -> None:
    rows = [{"id": f"g{i}", "text": f"Row {i}: " + "words of a row " * (5 + i % 7),
             "domain": "web"} for i in range(40)]
    data, ends = _gz_flushed([json.dumps(r).encode() + b"\n" for r in rows])
    first = gzip.compress(b"".join(json.dumps(r).encode() + b"\n" for r in _docs("m", 3)))
    path = tmp_path / "in.jsonl.gz"
    path.write_bytes(first + data[:ends[k] + 3])   # a whole member, then the cut one
    config = write_config(tmp_path / "c.yaml", input={"paths": [str(path)],
                                                      "on_truncated": "quarantine"},
                          score=NO_SCORERS)
    cfg, totals = _score(config)
    assert totals["ingest"].written == 3 + k + 1
    assert sorted(_read(cfg, "ingest").column("id").to_pylist()) == sorted(
        [f"m{i}" for i in range(3)] + [f"g{i}" for i in range(k + 1)])
    assert totals["ingest"].quarantined == {"truncated_input": 1}


def test_two_complete_zst_frames_are_both_read(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl.zst"
    path.write_bytes(_zst_frames(_docs("z", 200), 2))
    _, totals = _score(write_config(tmp_path / "c.yaml", input={"paths": [str(path)]},
                                    score=NO_SCORERS))
    assert totals["ingest"].read == totals["ingest"].written == 200


def test_truncated_gz_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl.gz"
    path.write_bytes(gzip.compress(b"".join(json.dumps(r).encode() + b"\n"
                                            for r in _docs("g", 100)))[:-20])
    config = write_config(tmp_path / "c.yaml", input={"paths": [str(path)]}, score=NO_SCORERS)
    with pytest.raises(UserError, match=r"in\.jsonl\.gz: .* at byte"):
        _score(config)


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_bom_and_every_line_ending(tmp_path: Path, newline: bytes) -> None:
    lines = [json.dumps(r).encode() for r in _docs("n", 100)]
    (tmp_path / "in.jsonl").write_bytes(b"\xef\xbb\xbf" + newline.join(lines) + newline)
    cfg, totals = _score(write_config(tmp_path / "c.yaml", input={
        "paths": [str(tmp_path / "in.jsonl")]}, score=NO_SCORERS))
    assert totals["ingest"].read == totals["ingest"].written == 100
    assert _read(cfg, "ingest").column("id").to_pylist()[0] == "n0"


def test_directory_without_supported_files_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "notes.txt").write_text("not an input")
    config = write_config(tmp_path / "c.yaml", input={"paths": [str(tmp_path / "data")]},
                          score=NO_SCORERS)
    with pytest.raises(UserError, match="holds no .jsonl"):
        _score(config)


def test_documents_over_max_doc_bytes_are_quarantined_with_their_size(tmp_path: Path) -> None:
    rows = _docs("m", 3) + [{"id": "huge", "text": "é" * 600, "domain": "web"}]
    write_jsonl(tmp_path / "in.jsonl", rows)
    cfg, totals = _score(write_config(tmp_path / "c.yaml", input={
        "paths": [str(tmp_path / "in.jsonl")], "max_doc_bytes": 1000}, score=NO_SCORERS))
    assert totals["ingest"].written == 3 and totals["ingest"].quarantined["too_large"] == 1
    row = _quarantine(cfg).to_pylist()[0]
    assert row["id"] == "huge" and row["detail"] == "1,200 bytes > input.max_doc_bytes 1,000"


def test_lines_split_the_same_at_every_chunk_boundary() -> None:
    data = b"\xef\xbb\xbfa\r\nbb\rc\n\nd\r\n\re\r"
    whole = list(lines(iter([data])))
    assert whole == [b"a", b"bb", b"c", b"", b"d", b"", b"e"]
    for i in range(len(data) + 1):
        for j in range(i, len(data) + 1):
            assert list(lines(iter([data[:i], data[i:j], data[j:]]))) == whole, (i, j)


def test_a_line_of_many_chunks_costs_its_length_not_its_square() -> None:
    chunk = b"x" * (1 << 20)
    started = time.perf_counter()
    found = list(lines(iter([chunk] * 48 + [b"\n", b"y"])))
    elapsed = time.perf_counter() - started
    assert [len(line) for line in found] == [48 << 20, 1]
    assert elapsed < 5, elapsed   # 0.6 s here; re-splitting the growing buffer took 14 s
