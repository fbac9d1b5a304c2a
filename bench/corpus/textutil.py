"""Text helpers shared by the sample-corpus extractors.

Everything here is deliberately *minimal*: the corpus exists to exercise quality scorers, so we
decode bytes and tidy whitespace runs but never remove boilerplate, navigation or markup residue.
"""

from __future__ import annotations

import gzip
import re
import subprocess
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

MAX_CHARS = 50_000  # hard cap on one document; longer texts are cut on paragraph boundaries


@dataclass(frozen=True, slots=True)
class Doc:
    """One corpus row. ``id`` is ``<package>:<path-or-locator>#<n>`` and unique corpus-wide."""

    id: str
    text: str
    domain: str
    source: str


def decode(data: bytes) -> str:
    """Decode as UTF-8 when valid, else latin-1 (old Debian/dict files are often latin-1)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def read_text(path: Path) -> str:
    """Read a (possibly gzip-compressed) file as text."""
    data = path.read_bytes()
    if path.suffix in (".gz", ".dz"):
        data = gzip.decompress(data)
    return decode(data)


_TRAILING_WS = re.compile(r"[ \t\r\f\v]+$", re.MULTILINE)
_MANY_BLANKS = re.compile(r"\n{3,}")


def normalize(text: str) -> str:
    """Minimal whitespace normalisation: unify newlines, drop trailing blanks and NULs, collapse
    runs of blank lines to one. Line structure is kept: line-based quality signals need it."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = _TRAILING_WS.sub("", text)
    text = _MANY_BLANKS.sub("\n\n", text)
    return text.strip("\n")


def cap_length(text: str, limit: int = MAX_CHARS) -> list[str]:
    """Cut ``text`` into pieces of at most ``limit`` chars, preferring paragraph then line breaks,
    so long manuals become several documents instead of one giant one."""
    pieces: list[str] = []
    while len(text) > limit:
        window = text[:limit]
        cut = window.rfind("\n\n")
        if cut < limit // 4:
            cut = window.rfind("\n")
        if cut < limit // 4:
            cut = limit
        pieces.append(text[:cut])
        text = text[cut:].lstrip("\n")
    pieces.append(text)
    return [p for p in pieces if p.strip()]


def split_on(text: str, pattern: re.Pattern[str]) -> list[str]:
    """Split before every match of ``pattern`` (a MULTILINE heading regex); the text before the
    first heading is kept as its own chunk (it is real preamble/boilerplate)."""
    starts = [m.start() for m in pattern.finditer(text)]
    bounds = [0, *[s for s in starts if s > 0], len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if text[a:b].strip()]


def make_docs(source: str, locator: str, domain: str, chunks: list[str]) -> list[Doc]:
    """Normalise chunks, cap their length, drop empties and number them ``#0, #1, ...``."""
    texts: list[str] = []
    for chunk in chunks:
        texts.extend(cap_length(normalize(chunk)))
    texts = [t for t in texts if t.strip()]
    return [Doc(f"{source}:{locator}#{i}", t, domain, source) for i, t in enumerate(texts)]


class _NaiveText(HTMLParser):
    """Tag stripper of the kind a quick-and-dirty web scraper uses: keeps every visible string
    (menus, breadcrumbs, 'Previous topic', footers), drops only <script>/<style> bodies."""

    BLOCK = frozenset(
        ("p", "div", "br", "li", "ul", "ol", "dl", "dt", "dd", "tr", "table", "td", "th", "pre",
         "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "section", "article", "nav", "header",
         "footer", "title", "hr", "form", "caption")
    )  # fmt: skip

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0
        self.pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self.skip += 1
        elif tag == "pre":
            self.pre += 1
        if tag in self.BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.skip = max(0, self.skip - 1)
        elif tag == "pre":
            self.pre = max(0, self.pre - 1)
        if tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        self.parts.append(data if self.pre else re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """Naive HTML -> text (see :class:`_NaiveText`); lines are stripped of edge spaces only."""
    parser = _NaiveText()
    parser.feed(html)
    parser.close()
    lines = (line.strip(" ") for line in "".join(parser.parts).split("\n"))
    return "\n".join(lines)


def dpkg_files(package: str) -> list[Path]:
    """Regular (non-symlink) files installed by ``package``, sorted, via ``dpkg -L``."""
    out = subprocess.run(
        ["dpkg-query", "-L", package], check=True, capture_output=True, text=True
    ).stdout
    paths = sorted({Path(line) for line in out.splitlines() if line.startswith("/")})
    return [p for p in paths if p.is_file() and not p.is_symlink()]


def dpkg_version(package: str) -> str:
    """Installed version of ``package`` (raises if it is not installed)."""
    return subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", package], check=True, capture_output=True, text=True
    ).stdout.strip()
