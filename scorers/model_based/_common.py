"""Helpers shared by the model-based scorers: shipped-model paths, corpus reading, laziness.

The pipeline pickles scorer objects into spawned workers, and models (a fastText handle,
a tokenizer) are neither cheap to pickle nor always picklable. So every model-based scorer
keeps only its constructor arguments in its pickled state and loads the model on first use,
once per process (``LazyModel``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from metamix.base.hashing import id_hash_key

MODELS_DIR = Path(__file__).resolve().parent / "models"
REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_TRAIN = REPO_ROOT / "data" / "sample" / "train"


class LazyModel:
    """Mixin: attributes starting with ``_cached`` are dropped when pickled, rebuilt lazily."""

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_cached")}


def text_column(batch: pa.RecordBatch, max_chars: int | None = None) -> pa.Array:
    """The batch's ``text`` as a non-null string array, optionally cut to ``max_chars``."""
    text = batch.column("text")
    if not pa.types.is_large_string(text.type):
        text = text.cast(pa.large_string())
    text = pc.fill_null(text, "")
    if max_chars is not None:
        text = pc.utf8_slice_codeunits(text, 0, max_chars)
    return text


def read_domain_texts(
    split_dir: Path, domains: Iterable[str], max_docs: int | None = None
) -> list[str]:
    """Texts of the given domains, ordered by a hash of the doc id (shard-order independent).

    With ``max_docs`` the documents whose id hashes lowest are kept: a deterministic
    sample spread over every source of the domains.
    """
    wanted = set(domains)
    keyed: list[tuple[bytes, str]] = []
    for shard in sorted(Path(split_dir).glob("*.parquet")):
        table = pq.read_table(shard, columns=["id", "text", "domain"])
        for doc_id, text, domain in zip(
            table.column("id").to_pylist(),
            table.column("text").to_pylist(),
            table.column("domain").to_pylist(),
            strict=True,
        ):
            if domain in wanted and text:
                keyed.append((id_hash_key(doc_id), text))
    keyed.sort()
    texts = [text for _, text in keyed]
    return texts if max_docs is None else texts[:max_docs]


def resolve_model_path(path: str | None, default_name: str) -> Path:
    """A configured model path (relative to the working directory) or the shipped default."""
    return Path(path) if path else MODELS_DIR / default_name
