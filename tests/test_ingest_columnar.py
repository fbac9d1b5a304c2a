"""Columnar ingest (Parquet, datasets) checks rows with Arrow kernels; it must keep and
quarantine exactly what the record-by-record path does, with the same reasons and order."""

from __future__ import annotations

from typing import Any
from unittest.mock import patch

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metamix.pipeline import ingest
from metamix.pipeline.config import InputConfig
from metamix.pipeline.fields import KeptField
from metamix.pipeline.ingest import NOT_PYTHON_SPACE, Canonicalizer
from metamix.pipeline.readers import records_of

SHARD = "/data/web/part-7.parquet"


def _both(inp: InputConfig, batches: list[pa.RecordBatch], kept: list[KeptField] | None = None,
          columnar_path: bool = True) -> tuple[list[Any], list[Any]]:
    """(columnar result, record-path result) over the same batches, one shard each;
    ``columnar_path``: whether the columnar side must do it without building records."""
    columnar = Canonicalizer(inp, SHARD, kept or [])
    rows = Canonicalizer(inp, SHARD, kept or [])
    out_c, out_r, first = [], [], 0
    for batch in batches:
        with patch.object(ingest, "records_of", wraps=records_of) as built:
            out_c.append(columnar.from_columns(batch, first))
        assert built.called is not columnar_path
        out_r.append(rows(records_of(batch, first)))
        first += batch.num_rows
    return out_c, out_r


def _same(out_c: list[Any], out_r: list[Any]) -> None:
    for (batch_c, bad_c), (batch_r, bad_r) in zip(out_c, out_r, strict=True):
        assert batch_c.schema == batch_r.schema
        assert batch_c.to_pylist() == batch_r.to_pylist()
        assert bad_c == bad_r


def test_every_bad_row_kind_matches_the_record_path() -> None:
    texts = ["fine text", None, "", " \t\n", "\u3000\x1c\x85\u2029", "é", "x" * 40, "ok",
             "dup of id a", "\u00a0\u00a0 nbsp kept", "  padded  ", "no domain", "fine"]
    ids = ["a", "b", "c", "d", "e", "f", "g", None, "a", "h", "", "k", "l"]
    domains = ["web", "web", "web", "web", "web", "web", "web", "web", "web", "code", "web",
               None, ""]
    sources = ["s", None, "", "s", "s", "s", "s", "s", "s", "", "s", "s", "s"]
    batch = pa.record_batch({"text": texts, "id": ids, "domain": domains, "source": sources})
    inp = InputConfig(paths=["x"], max_doc_bytes=32)
    out_c, out_r = _both(inp, [batch])
    _same(out_c, out_r)
    kept_batch, bad = out_c[0]
    assert kept_batch.column("id").to_pylist() == ["a", "f", "h"]
    assert kept_batch.column("source").to_pylist() == ["s", "s", "part-7"]
    assert [(b["row"], b["reason"]) for b in bad] == [
        (1, "missing_text"), (2, "empty_text"), (3, "empty_text"), (4, "empty_text"),
        (6, "too_large"), (7, "missing_id"), (8, "duplicate_id"), (10, "missing_id"),
        (11, "missing_domain"), (12, "missing_domain")]


def test_content_ids_path_domain_and_duplicates_across_batches() -> None:
    inp = InputConfig(paths=["x"], id_field=None, domain="books", source_field=None)
    first = pa.record_batch({"text": ["one", "two", "one"]})
    second = pa.record_batch({"text": pa.array(["two", "three"], pa.large_string())})
    out_c, out_r = _both(inp, [first, second])
    _same(out_c, out_r)
    assert [b["reason"] for _, bad in out_c for b in bad] == ["duplicate_id", "duplicate_id"]
    assert out_c[1][0].column("domain").to_pylist() == ["books"]


def test_kept_fields_and_non_text_sources() -> None:
    batch = pa.record_batch({"text": ["a b", "c d"], "id": ["1", "2"], "domain": ["w", "w"],
                             "source": [3, 4], "score": [0.5, None], "meta": [{"k": 1}, None]})
    inp = InputConfig(paths=["x"], keep_fields={"score": "score", "meta": "meta"})
    kept = [KeptField("score", "score", pa.float64()),
            KeptField("meta", "meta", pa.struct([("k", pa.int64())]))]
    out_c, out_r = _both(inp, [batch], kept)
    _same(out_c, out_r)
    assert out_c[0][0].column("source").to_pylist() == ["part-7", "part-7"]


def test_integer_ids_fall_back_to_records() -> None:
    ints = pa.record_batch({"text": ["a", "b", "c"], "id": [1, 2, 1], "domain": ["w"] * 3})
    _same(*_both(InputConfig(paths=["x"]), [ints], columnar_path=False))


@pytest.mark.parametrize("field", ["id", "domain"])
def test_nested_fields_fall_back_to_records(field: str) -> None:
    nested = pa.record_batch({"text": ["a", "b"], "meta": [{"id": "x", "domain": "w"},
                                                           {"id": "x", "domain": None}]})
    _same(*_both(InputConfig(paths=["x"], **{f"{field}_field": f"meta.{field}"}), [nested],
                 columnar_path=False))


def test_the_non_space_pattern_is_python_strip() -> None:
    import pyarrow.compute as pc

    chars = [chr(c) for c in range(0x3100) if not 0xD800 <= c < 0xE000]
    matched = pc.match_substring_regex(pa.array(chars), NOT_PYTHON_SPACE).to_pylist()
    assert [c for c, m in zip(chars, matched, strict=True) if not m] == [
        c for c in chars if not c.strip()]


unicode_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), unicode_text),
                          st.one_of(st.none(), st.sampled_from(["", "a", "b", "c"])),
                          st.one_of(st.none(), st.sampled_from(["", "web"]))),
                min_size=1, max_size=20),
       st.booleans())
def test_arbitrary_unicode_rows_match_the_record_path(rows: list[tuple], content_ids: bool
                                                      ) -> None:
    texts, ids, domains = (list(c) for c in zip(*rows, strict=True))
    batch = pa.record_batch({"text": pa.array(texts, pa.string()),
                             "id": pa.array(ids, pa.string()),
                             "domain": pa.array(domains, pa.string())})
    inp = InputConfig(paths=["x"], max_doc_bytes=20,
                      id_field=None if content_ids else "id")
    _same(*_both(inp, [batch, batch]))


@pytest.mark.parametrize(("sizes", "limit", "pieces"), [
    ([3, 3, 3], 9, [3]),              # fits: one piece
    ([3, 3, 3, 3], 7, [2, 2]),
    ([0, 0, 12, 1, 1], 5, [3, 2]),    # an oversized row goes with the empty ones before it
    ([2, 12, 0, 3], 5, [1, 1, 2]),
    ([5, 0, 0, 5, 1], 5, [3, 1, 1]),
])
def test_batches_are_split_by_text_bytes(sizes: list[int], limit: int, pieces: list[int]
                                         ) -> None:
    from metamix.pipeline.shard_tasks import _byte_bounded

    batch = pa.record_batch({"text": ["x" * n for n in sizes]})
    assert [p.num_rows for p in _byte_bounded(iter([batch]), limit)] == pieces
