"""PRRC rubric prompts: versioned files, rendering, and reading the model's score back.

Rubrics live in ``rubrics/<dimension>.v<N>.md`` and are never edited in place: a changed
prompt is a new version, so every stored annotation names the exact prompt it came from.
The hash of the file's bytes is recorded too (and is part of the annotation cache key), so
an accidental in-place edit cannot silently reuse answers to the old prompt.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from metamix.base.errors import UserError

DIMENSIONS: tuple[str, ...] = ("professionalism", "readability", "reasoning", "cleanliness")
RUBRIC_DIR = Path(__file__).resolve().parent / "rubrics"
PLACEHOLDER = "{text}"
DEFAULT_EXCERPT_CHARS = 2000
SCORE_RANGE = range(0, 6)

_FILE_RE = re.compile(r"^(?P<dimension>[a-z_]+)\.v(?P<version>\d+)\.md$")


@dataclass(frozen=True)
class Rubric:
    """One rubric prompt; ``hash`` identifies its exact bytes (first 16 hex of sha256)."""

    dimension: str
    version: int
    template: str
    hash: str

    def render(self, document: str, excerpt_chars: int = DEFAULT_EXCERPT_CHARS) -> str:
        """The prompt for one document. ``str.replace``, not ``str.format``: documents are
        full of ``{`` and ``}`` (code, JSON, LaTeX) and must be inserted verbatim."""
        return self.template.replace(PLACEHOLDER, excerpt(document, excerpt_chars))


def excerpt(text: str, max_chars: int = DEFAULT_EXCERPT_CHARS) -> str:
    """At most ``max_chars`` characters, cut at the last whitespace so no word is split.

    A text with no whitespace in its last half (a minified blob, a long URL) is cut hard at
    ``max_chars`` rather than shrunk to almost nothing.
    """
    if max_chars <= 0:
        raise ValueError("max_chars must be positive")
    text = text.strip()
    if len(text) <= max_chars:
        return text
    head = text[: max_chars + 1]  # one extra char: a cut right before a space is clean
    cut = max(head.rfind(" "), head.rfind("\n"), head.rfind("\t"))
    if cut < max_chars // 2:
        return text[:max_chars].rstrip()
    return text[:cut].rstrip()


def available_versions(dimension: str, rubric_dir: Path = RUBRIC_DIR) -> list[int]:
    """Versions present on disk for ``dimension``, ascending."""
    versions = []
    for path in rubric_dir.glob(f"{dimension}.v*.md"):
        match = _FILE_RE.match(path.name)
        if match and match["dimension"] == dimension:
            versions.append(int(match["version"]))
    return sorted(versions)


def load_rubric(dimension: str, version: int, rubric_dir: Path = RUBRIC_DIR) -> Rubric:
    """Read and check one rubric; a missing file or placeholder is a user error."""
    if dimension not in DIMENSIONS:
        raise UserError(f"unknown PRRC dimension {dimension!r}; known: {', '.join(DIMENSIONS)}")
    path = rubric_dir / f"{dimension}.v{version}.md"
    if not path.is_file():
        found = available_versions(dimension, rubric_dir)
        raise UserError(f"rubric {path} not found; versions of {dimension} on disk: {found}")
    data = path.read_bytes()
    template = data.decode("utf-8")
    if template.count(PLACEHOLDER) != 1:
        raise UserError(f"rubric {path}: needs exactly one {PLACEHOLDER} placeholder")
    return Rubric(dimension, version, template, hashlib.sha256(data).hexdigest()[:16])


# "Final score: 4", "**Final score:** 4", "Final Score: 4/5", "final score = **3** out of 5".
_SCORE_RE = re.compile(
    r"final\s+score\s*\**\s*[:=：]?\s*\**\s*(?P<n>\d+(?:\.\d+)?)\s*\**"
    r"(?P<denom>\s*(?:/|out\s+of)\s*\d+)?(?P<range>\s*[-–]\s*\d)?",
    re.IGNORECASE,
)
_DENOM_OK = re.compile(r"(?:/|out\s+of)\s*5$", re.IGNORECASE)


def parse_score(answer: str | None) -> int | None:
    """The integer after the last "Final score" in ``answer``, or None — never a guess.

    The last occurrence wins (models restate the format before answering). If that last
    occurrence is out of 0..5, fractional, a range ("3-4") or out of something other than 5,
    the answer has no score: earlier occurrences are not consulted.
    """
    if not answer:
        return None
    matches = list(_SCORE_RE.finditer(answer))
    if not matches:
        return None
    last = matches[-1]
    if last["range"] or (last["denom"] and not _DENOM_OK.search(last["denom"].strip())):
        return None
    value = float(last["n"])
    if not value.is_integer() or int(value) not in SCORE_RANGE:
        return None
    return int(value)
