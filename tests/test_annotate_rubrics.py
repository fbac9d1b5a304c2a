"""Rubric files, excerpts and score parsing: the parts of annotation that need no server."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metamix.base.errors import UserError
from metamix.scorers.prrc.rubrics import (
    DIMENSIONS,
    available_versions,
    excerpt,
    load_rubric,
    parse_score,
)


@pytest.mark.parametrize("dimension", DIMENSIONS)
def test_every_dimension_has_v1_with_one_placeholder(dimension: str) -> None:
    assert 1 in available_versions(dimension)
    rubric = load_rubric(dimension, 1)
    assert rubric.template.count("{text}") == 1
    assert len(rubric.hash) == 16 and rubric.hash == load_rubric(dimension, 1).hash
    assert "Final score: N" in rubric.template


def test_hashes_differ_between_dimensions() -> None:
    assert len({load_rubric(d, 1).hash for d in DIMENSIONS}) == len(DIMENSIONS)


def test_unknown_dimension_or_version_is_a_user_error(tmp_path) -> None:
    with pytest.raises(UserError, match="unknown PRRC dimension"):
        load_rubric("vibes", 1)
    with pytest.raises(UserError, match=r"versions of reasoning on disk: \[1"):
        load_rubric("reasoning", 99)
    (tmp_path / "reasoning.v1.md").write_text("no placeholder here")
    with pytest.raises(UserError, match="placeholder"):
        load_rubric("reasoning", 1, rubric_dir=tmp_path)


def test_render_inserts_braces_verbatim() -> None:
    rubric = load_rubric("reasoning", 1)
    doc = 'def f(x): return {"a": {x}} {text} {0} %s'
    prompt = rubric.render(doc)
    assert doc in prompt
    assert prompt.count("{text}") == 1  # the document's own, not re-substituted
    assert prompt.startswith(rubric.template.split("{text}")[0])


def test_excerpt_cuts_on_whitespace() -> None:
    text = "alpha beta gamma delta epsilon"
    assert excerpt(text, 100) == text
    assert excerpt(text, 13) == "alpha beta"  # "alpha beta ga" would split a word
    assert excerpt(text, 10) == "alpha beta"  # the cut falls exactly on a space
    assert excerpt("x" * 50 + " tail", 20) == "x" * 20  # no space in reach: hard cut
    assert excerpt("  padded  ", 100) == "padded"
    with pytest.raises(ValueError):
        excerpt(text, 0)


@given(st.text(alphabet=st.sampled_from("ab \n{}é"), max_size=300), st.integers(1, 120))
def test_excerpt_is_a_bounded_prefix(text: str, limit: int) -> None:
    cut = excerpt(text, limit)
    assert len(cut) <= limit
    assert text.strip().startswith(cut)


@pytest.mark.parametrize("answer,expected", [
    ("Good text.\nFinal score: 4", 4),
    ("**Final score:** 4", 4),
    ("Final Score: 4/5", 4),
    ("final score: 3 out of 5\n", 3),
    ("Final score: **5**", 5),
    ("Final score = 2", 2),
    ("Final score: 0   \n\n", 0),
    ("Final score: 4.0", 4),
    ("I'd say Final score: 2 at first, but on reflection\nFinal score: 5", 5),
    ('Write "Final score: N".\nFinal score: 1', 1),
])
def test_parse_score_accepts(answer: str, expected: int) -> None:
    assert parse_score(answer) == expected


@pytest.mark.parametrize("answer", [
    "", None, "A fine document, I'd give it a 4.", "Final score: 7", "Final score: 4.5",
    "Final score: 3-4", "Final score: 4/10", "Final score: N", "Score: 4",
    "Final score: 3\nFinal score: 9",  # the last occurrence is invalid: no fallback
])
def test_parse_score_never_guesses(answer: str | None) -> None:
    assert parse_score(answer) is None
