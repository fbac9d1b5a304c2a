"""The ``datasets`` hand-off (``mixture/interleave_datasets.py``) streams the mixture.

Domains with very different document lengths make per-document probabilities and token
weights disagree: the stream must still hold each selected document once, so its token
shares are the mixture's and its total is the selection's.
"""

from __future__ import annotations

import runpy
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from metamix.mixtures.mix.report import write_interleave_snippet


@pytest.fixture(autouse=True)
def _datasets_cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Streaming still takes lock files in the datasets cache: keep them out of ~/.cache."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")


# (docs, tokens per doc): books has few long documents, qa many short ones
SELECTION = {"books": (6, 500), "qa": (300, 5), "web": (40, 30)}


def _write_selection(run_dir: Path, selection: dict[str, tuple[int, int]]) -> dict[str, float]:
    (run_dir / "selected").mkdir(parents=True)
    for domain, (docs, length) in selection.items():
        pq.write_table(pa.table({
            "id": [f"{domain}-{i}" for i in range(docs)],
            "text": ["w " * length] * docs,
            "domain": [domain] * docs,
            "n_tokens": pa.array([length] * docs, pa.int64()),
        }), run_dir / "selected" / f"{domain}.parquet")
    total = sum(d * n for d, n in selection.values())
    return {d: docs * n / total for d, (docs, n) in selection.items()}


def _stream(snippet: Path) -> tuple[Counter[str], Counter[str]]:
    mixed = runpy.run_path(str(snippet))["mixed"]
    tokens: Counter[str] = Counter()
    ids: Counter[str] = Counter()
    for row in mixed:
        tokens[row["domain"]] += row["n_tokens"]
        ids[row["id"]] += 1
    return tokens, ids


def test_stream_holds_the_mixture_token_shares_and_the_selection_total(tmp_path: Path) -> None:
    shares = _write_selection(tmp_path, SELECTION)
    assert shares == pytest.approx({"books": 3000 / 5700, "qa": 1500 / 5700,
                                    "web": 1200 / 5700})
    snippet = write_interleave_snippet(tmp_path / "mixture" / "interleave_datasets.py",
                                       shares, seed=0)
    tokens, ids = _stream(snippet)
    assert sum(tokens.values()) == 5700                   # the selection, nothing repeated
    assert set(ids.values()) == {1} and len(ids) == 346   # every document exactly once
    for domain, share in shares.items():
        assert abs(tokens[domain] / 5700 - share) <= 0.01


def test_stream_interleaves_domains_from_the_start(tmp_path: Path) -> None:
    """The first quarter of the stream already holds every domain near its share."""
    shares = _write_selection(tmp_path, {"a": (200, 10), "b": (200, 10)})
    snippet = write_interleave_snippet(tmp_path / "mixture" / "i.py", shares, seed=3)
    head = Counter(row["domain"] for _, row in zip(range(100), runpy.run_path(str(snippet))
                                                   ["mixed"], strict=False))
    assert 30 <= head["a"] <= 70 and head["a"] + head["b"] == 100


def test_selection_not_sized_to_the_mixture_stops_with_a_message(tmp_path: Path) -> None:
    _write_selection(tmp_path, SELECTION)
    snippet = write_interleave_snippet(tmp_path / "mixture" / "i.py",
                                       {"books": 0.2, "qa": 0.3, "web": 0.5}, seed=0)
    with pytest.raises(SystemExit, match="not the mixture's share"):
        runpy.run_path(str(snippet))


def test_select_rewrites_an_older_snippet_from_the_runs_mixture(tmp_path: Path) -> None:
    """A run whose mix step finished under an older metamix is skipped by `metamix run`;
    `select` refreshes the hand-off that streams its output."""
    import json

    from metamix.cli.commands import _refresh_mixture_files
    from metamix.config import load_config
    from tests.conftest import write_config

    cfg = load_config(write_config(tmp_path / "c.yaml", run="r", input={"paths": ["x"]}))
    shares = _write_selection(cfg.run_dir, SELECTION)
    (cfg.run_dir / "mixture").mkdir()
    (cfg.run_dir / "mixture" / "weights.json").write_text(json.dumps({"weights": shares}))
    old = cfg.run_dir / "mixture" / "interleave_datasets.py"
    old.write_text("mixed = 'the old snippet'\n")
    _refresh_mixture_files(cfg, {})   # no select section: the snippet from the mixture
    tokens, _ = _stream(old)
    assert sum(tokens.values()) == 5700
