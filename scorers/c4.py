"""C4's line and page rules (Raffel et al. 2020) as datatrove 0.10's C4QualityFilter applies
them, reduced to scores and a keep/drop decision.

datatrove's filter also *rewrites* a kept document, deleting the lines that fail a line
rule; we never change text here. The signals say what that rewrite would keep:

- ``c4_lines_kept_frac``: lines (``str.splitlines``) surviving every line rule, over all
  lines; NaN for text without lines.
- ``c4_num_sentences``: sentences in the surviving lines (after citation removal), split
  as spaCy's sentencizer does; compared against ``min_num_sentences``.
- ``c4_has_lorem_ipsum`` / ``c4_has_curly_bracket``: a line that reached that check
  contains "lorem ipsum" (case-insensitive) / "{"; either drops the whole page.

Per line, in datatrove's order: any whitespace-separated word longer than
``max_word_length`` drops the line; citations ("[1]", "[edit]", "[citation needed]") are
removed; the line must end with . ? ! " ' but not "..."; have ``min_words_per_line`` words;
"lorem ipsum" drops the page; "javascript" drops the line; "{" drops the page; cookie/terms
phrases drop the line. The page's reason is the first page-dropping line, else too few
sentences.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from metamix.scorers._charclass import utf8_buffer
from metamix.scorers._jit import jit
from metamix.scorers._text import TextView, flag, per_row_sum, safe_ratio, text_view
from metamix.scorers._tokens import tokenize_bytes
from metamix.scorers.base import QualityFilter, Signals
from metamix.scorers.registry import register

_CITATION = r"\[\p{Nd}*\]|\[edit\]|\[citation needed\]"
_POLICY = r"terms of use|privacy policy|cookie policy|uses cookies|use of cookies|use cookies"


@register
class C4QualityScorer(QualityFilter):
    name = "c4"
    column_directions = {
        "c4_lines_kept_frac": "higher", "c4_num_sentences": "neutral",
        # C4 drops documents with lorem ipsum or a curly bracket (code, JavaScript)
        "c4_has_lorem_ipsum": "lower", "c4_has_curly_bracket": "lower",
    }

    def __init__(
        self,
        remove_citations: bool = True,
        filter_no_terminal_punct: bool = True,
        min_num_sentences: int = 5,
        min_words_per_line: int = 3,
        max_word_length: int = 1000,
        filter_lorem_ipsum: bool = True,
        filter_javascript: bool = True,
        filter_curly_bracket: bool = True,
        filter_policy: bool = True,
    ) -> None:
        self.remove_citations = remove_citations
        self.filter_no_terminal_punct = filter_no_terminal_punct
        self.min_num_sentences = min_num_sentences
        self.min_words_per_line = min_words_per_line
        self.max_word_length = max_word_length
        self.filter_lorem_ipsum = filter_lorem_ipsum
        self.filter_javascript = filter_javascript
        self.filter_curly_bracket = filter_curly_bracket
        self.filter_policy = filter_policy

    def signal_schema(self) -> pa.Schema:
        return pa.schema(
            [
                ("c4_lines_kept_frac", pa.float32()),
                ("c4_num_sentences", pa.int32()),
                ("c4_has_lorem_ipsum", pa.bool_()),
                ("c4_has_curly_bracket", pa.bool_()),
            ]
        )

    def signals(self, batch: pa.RecordBatch) -> Signals:
        view = text_view(batch)
        n = view.n_rows
        pieces = view.splitlines
        raw = pc.utf8_trim_whitespace(pieces.values)
        n_pieces = len(raw)
        parent = pieces.parent

        # Cheap checks first, on every line; the rest only on the survivors.
        passes = np.ones(n_pieces, dtype=bool)
        if self.max_word_length != -1:
            passes &= ~self._has_long_word(raw)
        bracket = np.zeros(n_pieces, dtype=bool)
        if self.remove_citations:
            bracket = pc.match_substring(raw, "[").to_numpy(zero_copy_only=False)
        if self.filter_no_terminal_punct:
            passes &= bracket | _ends_with_terminal_mark(raw)
        if self.min_words_per_line > 0:
            survivors = np.flatnonzero(passes)
            passes[survivors] = _has_words(raw.take(pa.array(survivors)), self.min_words_per_line)

        # Citations removed only where a "[" can start one; other lines are unchanged.
        survivors = np.flatnonzero(passes)
        line = raw.take(pa.array(survivors))
        if self.remove_citations and bracket[survivors].any():
            line = pc.replace_substring_regex(line, _CITATION, "")
            if self.filter_no_terminal_punct:
                ends = _ends_with_terminal_mark(line)
                passes[survivors[~ends]] = False
                line = line.filter(pa.array(ends))
                survivors = survivors[ends]

        m = len(line)
        lorem_s = flag(line, "(?i)lorem ipsum") if self.filter_lorem_ipsum else np.zeros(m, bool)
        after_lorem = ~lorem_s
        if self.filter_javascript:
            after_lorem &= ~flag(line, "(?i)javascript")
        curly_s = after_lorem & (
            pc.match_substring(line, "{").to_numpy(zero_copy_only=False)
            if self.filter_curly_bracket
            else np.zeros(m, bool)
        )
        kept_s = after_lorem & ~curly_s
        if self.filter_policy:
            kept_s &= ~flag(line, "(?i)" + _POLICY)

        lorem = np.zeros(n_pieces, dtype=bool)
        lorem[survivors[lorem_s]] = True
        curly = np.zeros(n_pieces, dtype=bool)
        curly[survivors[curly_s]] = True
        kept = np.zeros(n_pieces, dtype=bool)
        kept[survivors[kept_s]] = True

        kept_index = survivors[kept_s]
        sentences = np.zeros(n, dtype=np.int64)
        if kept_index.size:
            per_line = np.zeros(kept_index.size, dtype=np.int64)
            # Lines whose text is unchanged reuse the document's tokens (tokens never span
            # lines); lines that lost a citation are tokenized again.
            reuse = (
                ~bracket[kept_index]
                if not view.has_rare_line_breaks
                else np.zeros(kept_index.size, bool)
            )
            if reuse.any():
                per_piece = _sentences_per_piece(view, n_pieces)
                per_line[reuse] = per_piece[kept_index[reuse]]
            if not reuse.all():
                again = line.filter(pa.array(kept_s)).filter(pa.array(~reuse))
                tokens = tokenize_bytes(again)
                per_line[~reuse] = _sentence_counts(
                    tokens.row, tokens.is_sentence_end, tokens.is_punct, len(again)
                )
            sentences = per_row_sum(parent[kept_index], per_line.astype(np.float64), n)

        first_lorem = _first_index_per_row(parent, lorem, n)
        first_curly = _first_index_per_row(parent, curly, n)
        return {
            "c4_lines_kept_frac": safe_ratio(
                per_row_sum(parent[kept], None, n), view.splitlines_counts
            ),
            "c4_num_sentences": sentences.astype(np.int32),
            "c4_has_lorem_ipsum": first_lorem < np.iinfo(np.int64).max,
            "c4_has_curly_bracket": first_curly < np.iinfo(np.int64).max,
            "_lorem_first": first_lorem < first_curly,
            "_curly_first": first_curly < first_lorem,
        }

    def _has_long_word(self, lines: pa.Array) -> np.ndarray:
        """Lines with a whitespace-separated word longer than ``max_word_length``.

        A per-line Python check, but only on lines longer than the limit (rare).
        """
        lengths = pc.utf8_length(lines).to_numpy(zero_copy_only=False)
        out = np.zeros(len(lines), dtype=bool)
        for index in np.flatnonzero(lengths > max(self.max_word_length, 0)):
            words = lines[int(index)].as_py().split()
            out[index] = any(len(word) > self.max_word_length for word in words)
        return out

    def drop_rules(self, signals: Signals) -> list[tuple[str, np.ndarray]]:
        return [
            ("lorem_ipsum", signals["_lorem_first"]),
            ("curly_bracket", signals["_curly_first"]),
            ("too_few_sentences", signals["c4_num_sentences"] < self.min_num_sentences),
        ]


def _ends_with_terminal_mark(lines: pa.Array) -> np.ndarray:
    """Ends with . ? ! " or ' but not "..." (read from the UTF-8 bytes, no regex)."""
    if len(lines) == 0:
        return np.zeros(0, dtype=bool)
    data, _, offsets = utf8_buffer(lines)
    ends = offsets[1:]
    length = ends - offsets[:-1]
    last = data[np.maximum(ends - 1, 0)]
    marked = (length > 0) & np.isin(last, np.frombuffer(b".?!\"'", np.uint8))
    ellipsis = (length >= 3) & (last == 46)
    ellipsis &= (data[np.maximum(ends - 2, 0)] == 46) & (data[np.maximum(ends - 3, 0)] == 46)
    return marked & ~ellipsis


_SPACE_CLASS = r"\s\x{0b}\x{1c}-\x{1f}\x{85}\p{Z}"


def _has_words(lines: pa.Array, minimum: int) -> np.ndarray:
    """At least ``minimum`` whitespace-separated words (lines are already stripped)."""
    if minimum > 20:
        counts = pc.list_value_length(pc.utf8_split_whitespace(lines))
        return counts.to_numpy(zero_copy_only=False) >= minimum
    word = f"[^{_SPACE_CLASS}]+"
    return flag(lines, f"{word}(?:[{_SPACE_CLASS}]+{word}){{{minimum - 1}}}")


def _first_index_per_row(parent: np.ndarray, mask: np.ndarray, n_rows: int) -> np.ndarray:
    """Smallest flat index per row where ``mask`` holds (int64 max where none)."""
    first = np.full(n_rows, np.iinfo(np.int64).max, dtype=np.int64)
    hits = np.flatnonzero(mask)
    if hits.size:
        rows = parent[hits]
        # hits ascend, so the first hit of each row is where the row id changes
        starts = np.r_[True, rows[1:] != rows[:-1]]
        first[rows[starts]] = hits[starts]
    return first


def _sentences_per_piece(view: TextView, n_pieces: int) -> np.ndarray:
    """Sentences of every ``text.split("\\n")`` piece, from the document tokens."""
    pieces = view.newline_lines
    data, _, offsets = view.utf8
    byte_len = pc.binary_length(pieces.values).to_numpy(zero_copy_only=False).astype(np.int64)
    step = np.cumsum(byte_len + 1) - (byte_len + 1)  # bytes before each piece, batch-wide
    first_piece = np.searchsorted(pieces.parent, np.arange(view.n_rows))
    row_base = offsets[:-1] - step[np.minimum(first_piece, max(n_pieces - 1, 0))]
    piece_start = step + row_base[pieces.parent]
    tokens = view.tokens
    piece_of = np.searchsorted(piece_start, tokens.start, side="right") - 1
    return _sentence_counts(piece_of, tokens.is_sentence_end, tokens.is_punct, n_pieces)


@jit
def _sentence_counts(
    row: np.ndarray, is_end: np.ndarray, is_punct: np.ndarray, n_lines: int
) -> np.ndarray:
    """Sentences per line as spaCy's sentencizer counts them, from tokens in line order
    (``row`` non-decreasing). A line with tokens has one sentence, plus one more at every
    token that is not punctuation when a sentence-ending token ("." "!" "?" …) came
    after the previous such token of the line (or after the line start)."""
    counts = np.zeros(n_lines, np.int64)
    current = -1
    pending_end = False
    for t in range(row.size):
        line = row[t]
        if line != current:
            current = line
            counts[line] += 1
            pending_end = False
        if is_end[t]:
            pending_end = True
        elif not is_punct[t] and pending_end:
            counts[line] += 1
            pending_end = False
    return counts
