"""`select.where`: an SQL condition on any scored column, checked against the schema first,
its exclusions counted as a named reason; an empty selection is an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from metamix.pipeline.selection import SelectionError
from tests.test_selection import ids, select

ROWS = [
    {"id": "a", "domain": "web", "lang": "en", "s": 1.0},
    {"id": "b", "domain": "web", "lang": "de", "s": 5.0},
    {"id": "c", "domain": "web", "lang": "en", "s": 3.0},
    {"id": "d", "domain": "web", "lang": None, "s": 9.0},
    {"id": "e", "domain": "code", "lang": "en", "s": 2.0},
    {"id": "f", "domain": "code", "lang": "fr", "s": 4.0},
]


def test_where_keeps_only_matching_rows_and_counts_the_rest(tmp_path: Path) -> None:
    summary, out = select(tmp_path, ROWS, weights={"s": 1.0}, fraction=1.0, per_domain=True,
                          where="lang = 'en'")
    assert ids(out, "web") == ["c", "a"]      # b (de) and d (NULL lang) excluded
    assert ids(out, "code") == ["e"]
    assert summary["domains"]["web"]["dropped_docs"] == {"where": 2}
    assert summary["totals"]["dropped_docs"] == {"where": 3}
    assert summary["invariant"]["rows_read"] == 6 and summary["invariant"]["rows_written"] == 3


def test_where_excluded_rows_are_not_counted_by_the_quota(tmp_path: Path) -> None:
    # 2 web rows pass the condition; fraction 0.5 of them keeps 1 (the best: c)
    _, out = select(tmp_path, ROWS, weights={"s": 1.0}, fraction=0.5, per_domain=True,
                    where="lang = 'en' AND s > 0")
    assert ids(out, "web") == ["c"]


def test_where_runs_before_hard_filters(tmp_path: Path) -> None:
    rows = [{**r, "f_drop_reason": "bad" if r["id"] in ("a", "b") else None} for r in ROWS]
    summary, _ = select(tmp_path, rows, weights={"s": 1.0}, fraction=1.0, hard_filters=["f"],
                        where="lang = 'en'")
    # b fails both: counted once, under where; a fails only the filter
    assert summary["domains"]["web"]["dropped_docs"] == {"where": 2, "f:bad": 1}


def test_unknown_column_is_named_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(SelectionError) as err:
        select(tmp_path, ROWS, weights={"s": 1.0}, fraction=1.0, where="lnag = 'en'")
    message = str(err.value)
    assert message.startswith("select.where: no column 'lnag' in the scored input")
    assert '"lang"' in message          # DuckDB's candidate: the near name
    assert not (tmp_path / "out" / "selected").exists()


@pytest.mark.parametrize("where, expect", [
    ("lang", "is VARCHAR, not a true/false condition"),
    ("lang = = 'en'", "is not an SQL condition"),
    ("s > 'high'", "Could not convert string 'high' to DOUBLE"),
    ("s > avg(s)", "WHERE clause cannot contain aggregates"),
])
def test_bad_conditions_are_one_clear_error(tmp_path: Path, where: str, expect: str) -> None:
    with pytest.raises(SelectionError, match=expect.replace("(", r"\(")):
        select(tmp_path, ROWS, weights={"s": 1.0}, fraction=1.0, where=where)


def test_an_empty_selection_is_an_error_with_reasons(tmp_path: Path) -> None:
    with pytest.raises(SelectionError, match=r"the selection kept 0 of the 6 scored rows; "
                                             r"top reasons: where 6"):
        select(tmp_path, ROWS, weights={"s": 1.0}, fraction=1.0, where="lang = 'xx'")
