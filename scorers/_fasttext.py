"""fastText training shared by the quality classifier and the PRRC raters.

Both need the same guarantees: one thread and a fixed seed (so a retrain reproduces the
shipped file), a training file that lives only while the model is trained and saved, and
the package's load-time warning silenced.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any


def import_fasttext() -> Any:
    try:
        import fasttext
    except ImportError as exc:  # pragma: no cover - dependency missing
        raise ImportError("fastText scorers need `pip install fasttext-community`") from exc
    fasttext.FastText.eprint = lambda *args, **kwargs: None  # silence the load warning
    return fasttext


def train_supervised(lines: Iterable[str], save: Callable[[Any, Path], Path],
                     **params: Any) -> Path:
    """Train on ``__label__X text`` lines, then ``save(model, train_file)`` while the
    training file still exists (quantization re-reads it); returns what ``save`` returns."""
    fasttext = import_fasttext()
    with tempfile.TemporaryDirectory() as tmp:
        train_file = Path(tmp) / "train.txt"
        with open(train_file, "w", encoding="utf-8") as fh:
            for line in lines:
                fh.write(line + "\n")
        model = fasttext.train_supervised(input=str(train_file), thread=1, verbose=0, **params)
        return save(model, train_file)
