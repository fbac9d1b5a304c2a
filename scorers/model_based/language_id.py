"""Language identification with ``langid`` (Lui & Baldwin 2012), whose model ships inside
the package: no download, the same model in every environment.

langid's default ``classify`` returns an unnormalized log-probability; we build the
identifier with ``norm_probs=True`` so ``lang_score`` is the posterior probability of the
top language, in [0, 1]. langid's cost is linear in the text, and the language of a
document is settled by its first few hundred characters, so only the first ``max_chars``
characters are classified (whitespace runs collapsed first so indentation does not use up
the budget).

langid's own ``classify`` walks its byte-level DFA in a Python loop per byte (about 80
documents/s here). ``BatchLangId`` runs the same DFA over the whole batch in lock-step, one
numpy step per byte position for all documents, counts (document, state) visits, and maps
them to class log-probabilities with one sparse product against a precomputed
state x language matrix (the sum of ``nb_ptc`` rows over each state's output features). The
arithmetic is langid's, so labels match ``classify`` and scores match to float rounding.

Documents with no letters or digits in that prefix (empty, only punctuation)
get a null ``lang`` and a NaN ``lang_score``: langid would answer its prior's favourite.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from metamix.scorers.base import Scorer
from metamix.scorers.model_based._common import LazyModel, text_column
from metamix.scorers.registry import register


class BatchLangId:
    """langid.py's model, applied to many texts at once (see the module docstring)."""

    def __init__(self, languages: list[str] | None = None) -> None:
        from langid.langid import LanguageIdentifier, model

        ident = LanguageIdentifier.from_modelstring(model, norm_probs=True)
        classes = list(ident.nb_classes)
        keep = np.ones(len(classes), bool)
        if languages:
            unknown = sorted(set(languages) - set(classes))
            if unknown:
                raise ValueError(f"unknown language codes {unknown}")
            keep = np.array([c in languages for c in classes])
        self.classes = np.array([c for c, k in zip(classes, keep, strict=True) if k])
        self.nextmove = np.frombuffer(ident.tk_nextmove, dtype=np.dtype(
            ident.tk_nextmove.typecode)).astype(np.int64)
        n_states = len(self.nextmove) // 256
        ptc = ident.nb_ptc[:, keep].astype(np.float64)
        self.state_logp = np.zeros((n_states, int(keep.sum())))
        for state, features in ident.tk_output.items():
            if features:
                self.state_logp[state] = ptc[list(features)].sum(axis=0)
        self.prior = np.asarray(ident.nb_pc, dtype=np.float64)[keep]
        self.n_states = n_states

    def classify(self, texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """(index of the top class, its normalized probability) for every text."""
        texts = texts.cast(pa.large_string())
        n = len(texts)
        if n == 0:
            return np.zeros(0, np.int64), np.zeros(0)
        offsets = np.frombuffer(texts.buffers()[1], np.int64)[texts.offset:texts.offset + n + 1]
        data = np.frombuffer(texts.buffers()[2], np.uint8) if texts.buffers()[2] else (
            np.zeros(1, np.uint8))
        lengths = np.diff(offsets)
        width = int(lengths.max()) if n else 0
        pos = np.arange(width)
        valid = pos[None, :] < lengths[:, None]
        byte_at = data[np.where(valid, offsets[:-1, None] + pos[None, :], 0)].astype(np.int64)
        states = np.zeros((n, width), np.int64)
        state = np.zeros(n, np.int64)
        for j in range(width):
            state = self.nextmove[(state << 8) + byte_at[:, j]]
            states[:, j] = state
        rows = np.broadcast_to(np.arange(n)[:, None], (n, width))[valid]
        from scipy import sparse  # here: the registry imports this module in every command

        visits = sparse.csr_matrix((np.ones(len(rows)), (rows, states[valid])),
                                   shape=(n, self.n_states))
        logp = visits @ self.state_logp + self.prior
        top = np.argmax(logp, axis=1)
        prob = 1.0 / np.exp(logp - logp[np.arange(n), top][:, None]).sum(axis=1)
        return top, prob


@lru_cache(maxsize=4)
def batch_identifier(languages: tuple[str, ...] | None) -> BatchLangId:
    """One identifier per process and language set (unpacking langid's model takes seconds)."""
    return BatchLangId(list(languages) if languages else None)


@register
class LangIdScorer(LazyModel, Scorer):
    """Columns ``lang`` (ISO 639-1 code, e.g. ``en``) and ``lang_score`` (probability)."""

    name = "langid"
    # how sure langid is of the language: not a quality judgement either way
    column_directions = {"lang_score": "neutral"}

    def __init__(self, max_chars: int = 1000, languages: list[str] | None = None) -> None:
        if max_chars < 1:
            raise ValueError("max_chars must be >= 1")
        self.max_chars = max_chars
        self.languages = languages

    def output_schema(self) -> pa.Schema:
        return pa.schema([("lang", pa.string()), ("lang_score", pa.float32())])

    def _identifier(self) -> BatchLangId:
        if getattr(self, "_cached_identifier", None) is None:
            langs = tuple(sorted(self.languages)) if self.languages else None
            self._cached_identifier = batch_identifier(langs)
        return self._cached_identifier

    def classify(self, texts: pa.Array) -> tuple[list[str | None], np.ndarray]:
        collapsed = pc.replace_substring_regex(texts, r"\s+", " ")
        prefixes = pc.utf8_slice_codeunits(pc.utf8_trim_whitespace(collapsed), 0,
                                           self.max_chars)
        has_content = pc.match_substring_regex(prefixes, r"[\pL\pN]").to_numpy(
            zero_copy_only=False)
        identifier = self._identifier()
        top, prob = identifier.classify(prefixes)
        labels = [str(identifier.classes[t]) if ok else None
                  for t, ok in zip(top, has_content, strict=True)]
        return labels, np.clip(np.where(has_content, prob, np.nan), 0.0, 1.0)

    def score(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        # Collapse before cutting: a generous raw prefix, then max_chars of the collapsed one.
        labels, scores = self.classify(text_column(batch, self.max_chars * 4))
        return {"lang": pa.array(labels, type=pa.string()),
                "lang_score": pa.array(scores.astype(np.float32), type=pa.float32())}
