"""Every built-in family is registered, builds from defaults and honours its schema."""

from __future__ import annotations

import inspect

import pyarrow as pa
import pytest

from metamix.scorers.base import QualityFilter
from metamix.scorers.registry import load_builtin

FAMILIES = ("redpajama", "gopher_quality", "gopher_repetition", "c4", "fineweb")
SAMPLE = pa.record_batch(
    [pa.array(["The cat sat on the mat. It was happy.", "", "x\ny\n\nz", None], pa.string())],
    names=["text"],
)


def test_all_families_registered() -> None:
    assert set(FAMILIES) <= set(load_builtin())


def test_load_builtin_is_idempotent() -> None:
    first = dict(load_builtin())
    assert load_builtin() == first


@pytest.mark.parametrize("name", FAMILIES)
def test_family_builds_with_defaults_and_matches_schema(name: str) -> None:
    scorer = load_builtin()[name]()
    schema = scorer.output_schema()
    out = scorer.score(SAMPLE)
    assert list(out) == schema.names
    for field in schema:
        assert out[field.name].type == field.type, field.name
        assert len(out[field.name]) == SAMPLE.num_rows


@pytest.mark.parametrize("name", FAMILIES)
def test_params_round_trip(name: str) -> None:
    """Constructor arguments are stored under their own names, so configs can rebuild."""
    cls = load_builtin()[name]
    scorer = cls()
    params = scorer.params()
    expected = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    assert list(params) == expected
    rebuilt = cls(**params)
    assert rebuilt.params() == params
    assert rebuilt.output_schema() == scorer.output_schema()


@pytest.mark.parametrize("name", ["gopher_quality", "gopher_repetition", "c4", "fineweb"])
def test_quality_filters_have_drop_reason_column(name: str) -> None:
    scorer = load_builtin()[name]()
    assert isinstance(scorer, QualityFilter)
    assert scorer.output_schema().names[-1] == f"{name}_drop_reason"


def test_column_names_unique_across_families() -> None:
    names = [n for f in FAMILIES for n in load_builtin()[f]().output_schema().names]
    assert len(names) == len(set(names))


def test_repetition_schema_follows_params() -> None:
    scorer = load_builtin()["gopher_repetition"](top_n_grams=[[2, 0.2]], dup_n_grams=[])
    names = scorer.output_schema().names
    assert "gopher_rep_top_2gram_char_frac" in names
    assert not any(n.startswith("gopher_rep_dup_5") for n in names)
    assert len(scorer.score(SAMPLE)) == len(names)
