"""Per-source extractors for the bundled sample corpus.

Each extractor reads files installed by Debian packages (see ``install_sources.sh``), cuts them
into documents and returns ``Doc`` rows. Files are always enumerated through ``dpkg -L`` and
sorted, so the output depends only on the installed package versions, not on the machine.
"""

from __future__ import annotations

import gzip
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

from textutil import (
    Doc,
    cap_length,
    decode,
    dpkg_files,
    html_to_text,
    make_docs,
    read_text,
    split_on,
)

PY_HTML = Path("/usr/share/doc/python3.11/html")
PY_PROSE_DIRS = ("tutorial", "howto", "whatsnew")  # -> books (from the reST sources)
PERL_POD = Path("/usr/share/perl/5.36.0/pod")
PERL_BOOKISH = re.compile(
    r"^perl(\w*tut|intro|style|modstyle|newmod|hist|community|book|trap)\.pod$"
)
PERL_FAQ = re.compile(r"^perl(faq\d|unifaq)\.pod$")
LINUX_DOC = Path("/usr/share/doc/linux-doc-6.1/Documentation")

RST_HEADING = re.compile(r"^[^\n]*\S[^\n]*\n([=\-~^\"'`#*+])\1{2,}[ \t]*$", re.MULTILINE)
POD_HEAD2 = re.compile(r"^=head[12] ", re.MULTILINE)
CHANGELOG_ENTRY = re.compile(r"^\S[^\n]*\([^)\n]*\)[^\n]*urgency=", re.MULTILINE)
CHANGELOG_GROUP_CHARS = 8_000  # consecutive changelog entries are grouped up to this size
CHANGELOG_MAX_CHARS = 120_000  # per changelog, newest entries first
CODE_MAX_CHARS = 10_000  # source files are cut at blank lines into ~250-line pieces

# Packages whose Debian changelog and copyright file become (noisy) web documents.
META_PACKAGES = (
    "bash", "bash-doc", "bible-kjv", "bible-kjv-text", "coreutils", "debian-faq",
    "debian-reference-en", "dict-devil", "dict-foldoc", "dict-gcide", "dict-jargon", "dictd",
    "debian-handbook", "dpkg", "emacs-common", "fortunes", "git-doc", "grep", "gzip",
    "libpython3.11-stdlib", "linux-doc-6.1", "python-django-doc",
    "perl", "perl-doc", "python3.11-doc", "r-doc-html", "sed", "tar", "zsh-common", "zsh-doc",
)  # fmt: skip

# (book name as understood by `bible`, number of chapters) for the 66 books of the KJV.
BIBLE_BOOKS = (
    ("Genesis", 50), ("Exodus", 40), ("Leviticus", 27), ("Numbers", 36), ("Deuteronomy", 34),
    ("Joshua", 24), ("Judges", 21), ("Ruth", 4), ("1Samuel", 31), ("2Samuel", 24),
    ("1Kings", 22), ("2Kings", 25), ("1Chronicles", 29), ("2Chronicles", 36), ("Ezra", 10),
    ("Nehemiah", 13), ("Esther", 10), ("Job", 42), ("Psalms", 150), ("Proverbs", 31),
    ("Ecclesiastes", 12), ("SongofSolomon", 8), ("Isaiah", 66), ("Jeremiah", 52),
    ("Lamentations", 5), ("Ezekiel", 48), ("Daniel", 12), ("Hosea", 14), ("Joel", 3),
    ("Amos", 9), ("Obadiah", 1), ("Jonah", 4), ("Micah", 7), ("Nahum", 3), ("Habakkuk", 3),
    ("Zephaniah", 3), ("Haggai", 2), ("Zechariah", 14), ("Malachi", 4), ("Matthew", 28),
    ("Mark", 16), ("Luke", 24), ("John", 21), ("Acts", 28), ("Romans", 16),
    ("1Corinthians", 16), ("2Corinthians", 13), ("Galatians", 6), ("Ephesians", 6),
    ("Philippians", 4), ("Colossians", 4), ("1Thessalonians", 5), ("2Thessalonians", 3),
    ("1Timothy", 6), ("2Timothy", 4), ("Titus", 3), ("Philemon", 1), ("Hebrews", 13),
    ("James", 5), ("1Peter", 5), ("2Peter", 3), ("1John", 5), ("2John", 1), ("3John", 1),
    ("Jude", 1), ("Revelation", 22),
)  # fmt: skip


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


# --------------------------------------------------------------------------- web


def python_html() -> list[Doc]:
    """Python docs HTML pages, naively stripped (sidebar, breadcrumbs, footer all kept)."""
    docs: list[Doc] = []
    for path in dpkg_files("python3.11-doc"):
        if path.suffix != ".html" or not path.is_relative_to(PY_HTML):
            continue
        rel = _rel(path, PY_HTML)
        if rel.startswith(("_", "faq/", *(d + "/" for d in PY_PROSE_DIRS))):
            continue
        docs += make_docs("python3.11-doc", rel, "web", [html_to_text(read_text(path))])
    return docs


def html_pages(package: str, root: Path, skip: re.Pattern[str] | None = None) -> list[Doc]:
    """Every ``*.html`` under ``root`` from ``package``, one page per document (capped)."""
    docs: list[Doc] = []
    for path in dpkg_files(package):
        if path.suffix != ".html" or not path.is_relative_to(root):
            continue
        rel = _rel(path, root)
        if skip is not None and skip.search(rel):
            continue
        docs += make_docs(package, rel, "web", [html_to_text(read_text(path))])
    return docs


def debian_reference() -> list[Doc]:
    return html_pages("debian-reference-en", Path("/usr/share/debian-reference"))


def r_manuals() -> list[Doc]:
    return html_pages("r-doc-html", Path("/usr/share/R/doc/manual"), re.compile("R-FAQ"))


def zsh_html() -> list[Doc]:
    return html_pages("zsh-doc", Path("/usr/share/doc/zsh-common/html"), re.compile("FAQ"))


def bash_html() -> list[Doc]:
    return html_pages("bash-doc", Path("/usr/share/doc/bash"))


def _fortune_entries() -> list[tuple[str, str, int, str]]:
    """(package, file, index, text) for every fortune cookie, in file order."""
    out: list[tuple[str, str, int, str]] = []
    for package in ("fortunes-min", "fortunes"):
        for path in dpkg_files(package):
            if path.parent.name != "fortunes" or path.suffix in (".dat", ".u8"):
                continue
            entries = decode(path.read_bytes()).split("\n%\n")
            out += [(package, path.name, i, t) for i, t in enumerate(entries)]
    return out


def fortunes_web() -> list[Doc]:
    """Fortune cookies (Usenet/IRC quips, quotes, ASCII art) as short web-like fragments."""
    return [
        d
        for pkg, name, i, text in _fortune_entries()
        if not text.lstrip().startswith("Q:")
        for d in make_docs(pkg, f"{name}@{i}", "web", [text])
    ]


def debian_meta() -> list[Doc]:
    """``changelog.Debian.gz`` (grouped entries) and ``copyright`` (licence text) files."""
    docs: list[Doc] = []
    for package in META_PACKAGES:
        root = Path("/usr/share/doc") / package
        for path in dpkg_files(package):
            if path.parent != root:
                continue
            if path.name == "copyright":
                docs += make_docs(package, f"{package}/copyright", "web", [read_text(path)])
            elif path.name == "changelog.Debian.gz":
                groups: list[str] = []
                entries = split_on(read_text(path), CHANGELOG_ENTRY)
                while sum(map(len, entries)) > CHANGELOG_MAX_CHARS and len(entries) > 1:
                    entries.pop()  # keep the newest entries: linux's changelog alone is ~4 MB
                for entry in entries:
                    if groups and len(groups[-1]) + len(entry) <= CHANGELOG_GROUP_CHARS:
                        groups[-1] += entry
                    else:
                        groups.append(entry)
                docs += make_docs(package, f"{package}/changelog.Debian", "web", groups)
    return docs


# --------------------------------------------------------------------------- code


def _code_docs(package: str, locator: str, path: Path) -> list[Doc]:
    """One source file -> documents of at most CODE_MAX_CHARS, cut at blank lines."""
    return make_docs(package, locator, "code", cap_length(read_text(path), CODE_MAX_CHARS))


def python_stdlib() -> list[Doc]:
    """Python standard-library modules (``*.py``)."""
    root = Path("/usr/lib/python3.11")
    return [
        d
        for package in ("libpython3.11-minimal", "libpython3.11-stdlib", "python3-lib2to3")
        for path in dpkg_files(package)
        if path.suffix == ".py" and path.is_relative_to(root)
        for d in _code_docs(package, _rel(path, root), path)
    ]


def perl_modules() -> list[Doc]:
    """Perl core modules (``*.pm``, code with embedded POD)."""
    root = Path("/usr/share/perl/5.36.0")
    return [
        d
        for path in dpkg_files("perl-modules-5.36")
        if path.suffix == ".pm"
        for d in _code_docs("perl-modules-5.36", _rel(path, root), path)
    ]


def emacs_lisp() -> list[Doc]:
    """Emacs Lisp sources shipped (gzipped) by emacs-el."""
    root = Path("/usr/share/emacs/28.2/lisp")
    return [
        d
        for path in dpkg_files("emacs-el")
        if path.name.endswith(".el.gz") and path.is_relative_to(root)
        for d in _code_docs("emacs-el", _rel(path, root).removesuffix(".gz"), path)
    ]


def bash_examples() -> list[Doc]:
    """Example shell scripts shipped by bash-doc (plain files only, no tarballs)."""
    root = Path("/usr/share/doc/bash/examples")
    return [
        d
        for path in dpkg_files("bash-doc")
        if path.is_relative_to(root) and not re.search(r"\.(gz|xz|bz2|tar|html)$", path.name)
        for d in _code_docs("bash-doc", _rel(path, root.parent), path)
    ]


# --------------------------------------------------------------------------- books


def bible_chapters() -> list[Doc]:
    """KJV Bible, one chapter per document, printed by the ``bible`` program at 80 columns."""
    env = {**os.environ, "COLUMNS": "80"}
    docs: list[Doc] = []
    for book, chapters in BIBLE_BOOKS:
        for chapter in range(1, chapters + 1):
            out = subprocess.run(
                ["bible", "-l80", f"{book}{chapter}:1-999"],
                check=True, capture_output=True, env=env,
            ).stdout  # fmt: skip
            docs += make_docs("bible-kjv-text", f"{book}/{chapter}", "books", [decode(out)])
    return docs


def python_prose() -> list[Doc]:
    """Python tutorial, HOWTOs and What's New essays as reST source: long-form prose."""
    root = PY_HTML / "_sources"
    docs: list[Doc] = []
    for path in dpkg_files("python3.11-doc"):
        if path.is_relative_to(root) and _rel(path, root).startswith(PY_PROSE_DIRS):
            docs += make_docs("python3.11-doc", _rel(path, PY_HTML), "books", [read_text(path)])
    return docs


def debian_handbook() -> list[Doc]:
    """The Debian Administrator's Handbook (English HTML, one page = one section per doc)."""
    root = Path("/usr/share/doc/debian-handbook/html")
    return [
        d
        for path in dpkg_files("debian-handbook")
        if path.parent == root / "en-US" and path.suffix == ".html"
        for d in make_docs("debian-handbook", _rel(path, root), "books", [
            html_to_text(read_text(path))
        ])
    ]  # fmt: skip


def perl_tutorials() -> list[Doc]:
    """Perl tutorials and style guides (POD), cut at ``=head1`` sections when too long."""
    return _perl_pods("books", lambda name: bool(PERL_BOOKISH.match(name)))


def _perl_pods(domain: str, keep: Callable[[str], bool]) -> list[Doc]:
    docs: list[Doc] = []
    for path in dpkg_files("perl-doc"):
        if path.parent == PERL_POD and path.suffix == ".pod" and keep(path.name):
            docs += make_docs("perl-doc", f"pod/{path.name}", domain, [read_text(path)])
    return docs


# --------------------------------------------------------------------------- reference


def _b64num(s: str) -> int:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    n = 0
    for ch in s:
        n = n * 64 + alphabet.index(ch)
    return n


def dict_entries(package: str, name: str) -> list[Doc]:
    """dictd database entries, one per document, via the ``.index`` offsets (deduplicated:
    several headwords can point at the same entry)."""
    base = Path("/usr/share/dictd") / name
    data = gzip.decompress(base.with_suffix(".dict.dz").read_bytes())
    spans: set[tuple[int, int]] = set()
    for line in base.with_suffix(".index").read_bytes().decode("utf-8", "replace").splitlines():
        fields = line.split("\t")
        if len(fields) >= 3:
            spans.add((_b64num(fields[1]), _b64num(fields[2])))
    docs: list[Doc] = []
    for start, length in sorted(spans):
        docs += make_docs(package, f"{name}@{start}", "reference", [
            decode(data[start : start + length])
        ])  # fmt: skip
    return docs


# --------------------------------------------------------------------------- technical


def linux_docs() -> list[Doc]:
    """Linux kernel documentation (reST/text, English only), one file per document."""
    docs: list[Doc] = []
    for path in dpkg_files("linux-doc-6.1"):
        if not path.is_relative_to(LINUX_DOC) or not path.name.endswith((".rst.gz", ".txt.gz")):
            continue
        rel = _rel(path, LINUX_DOC).removesuffix(".gz")
        if rel.startswith("translations/") or path.name == "faq.rst.gz":
            continue
        docs += make_docs("linux-doc-6.1", rel, "technical", [read_text(path)])
    return docs


def git_manuals() -> list[Doc]:
    """Git manual pages and guides in AsciiDoc source form."""
    root = Path("/usr/share/doc/git-doc")
    return [
        d
        for path in dpkg_files("git-doc")
        if path.parent == root and path.suffix == ".txt" and path.name != "gitfaq.txt"
        for d in make_docs("git-doc", path.name, "technical", [read_text(path)])
    ]


def perl_reference() -> list[Doc]:
    """Perl reference manuals (perlfunc, perlre, perlapi, perl*delta, ...)."""
    return _perl_pods(
        "technical", lambda n: not PERL_BOOKISH.match(n) and not PERL_FAQ.match(n)
        and n != "perlfaq.pod"
    )  # fmt: skip


# --------------------------------------------------------------------------- qa


def perl_faq() -> list[Doc]:
    """perlfaq1-9/perlunifaq and core-module FAQs, one question+answer per document."""
    docs: list[Doc] = []
    for path in dpkg_files("perl-doc"):
        if path.parent == PERL_POD and PERL_FAQ.match(path.name):
            chunks = split_on(read_text(path), POD_HEAD2)
            docs += make_docs("perl-doc", f"pod/{path.name}", "qa", chunks)
    for path in dpkg_files("perl-modules-5.36"):
        if path.name.endswith("FAQ.pod"):
            chunks = split_on(read_text(path), POD_HEAD2)
            rel = _rel(path, Path("/usr/share/perl/5.36.0"))
            docs += make_docs("perl-modules-5.36", rel, "qa", chunks)
    return docs


def python_faq() -> list[Doc]:
    """Python FAQ (reST sources), one question (section heading) per document."""
    root = PY_HTML / "_sources/faq"
    docs: list[Doc] = []
    for path in dpkg_files("python3.11-doc"):
        if path.is_relative_to(root):
            chunks = split_on(read_text(path), RST_HEADING)
            docs += make_docs("python3.11-doc", _rel(path, PY_HTML), "qa", chunks)
    return docs


def debian_faq() -> list[Doc]:
    """Debian FAQ plain-text editions (English, German, French), one numbered question per doc."""
    docs: list[Doc] = []
    heading = re.compile(r"^\d+(?:\.\d+)+\.\s", re.MULTILINE)
    for package, lang in (("debian-faq", "en"), ("debian-faq-de", "de"), ("debian-faq-fr", "fr")):
        path = Path(f"/usr/share/doc/debian/FAQ/debian-faq.{lang}.txt.gz")
        assert path in dpkg_files(package), path
        docs += make_docs(
            package, path.name.removesuffix(".gz"), "qa", split_on(read_text(path), heading)
        )
    return docs


def emacs_faq() -> list[Doc]:
    """GNU Emacs FAQ (Info format), one Info node (a question or a topic list) per document."""
    path = Path("/usr/share/info/emacs/efaq.info.gz")
    assert path in dpkg_files("emacs-common"), path
    return make_docs("emacs-common", "info/efaq.info", "qa", read_text(path).split("\x1f"))


def django_faq() -> list[Doc]:
    """Django FAQ HTML pages, naively stripped, one ``<h2>`` question per document."""
    root = Path("/usr/share/doc/python-django-doc/html")
    return [
        d
        for path in dpkg_files("python-django-doc")
        if path.parent == root / "faq" and path.suffix == ".html"
        for d in _html_split("python-django-doc", path, root, r"<h2")
    ]


def _html_split(package: str, path: Path, root: Path, heading: str) -> list[Doc]:
    """Cut raw HTML before every ``heading`` tag, then strip each piece naively."""
    html = read_text(path)
    chunks = [html_to_text(c) for c in split_on(html, re.compile(heading))]
    return make_docs(package, _rel(path, root), "qa", chunks)


def r_zsh_git_faq() -> list[Doc]:
    """R FAQ and Zsh FAQ (HTML, one section per document) and gitfaq (one question each)."""
    r_root, z_root = Path("/usr/share/R/doc/manual"), Path("/usr/share/doc/zsh-common/html")
    heading = r'<h[34] class="(?:section|subsection)"'
    docs = _html_split("r-doc-html", r_root / "R-FAQ.html", r_root, heading)
    for path in dpkg_files("zsh-doc"):
        if path.is_relative_to(z_root) and re.fullmatch(r"FAQ\d+\.html", path.name):
            docs += _html_split("zsh-doc", path, z_root, r"<h2")
    gitfaq = Path("/usr/share/doc/git-doc/gitfaq.txt")
    chunks = split_on(read_text(gitfaq), re.compile(r"^\S[^\n]*::$", re.MULTILINE))
    return docs + make_docs("git-doc", gitfaq.name, "qa", chunks)


def linux_faq() -> list[Doc]:
    """Kernel subsystem FAQs (bpf, kunit, damon, media), one question per document."""
    docs: list[Doc] = []
    for path in dpkg_files("linux-doc-6.1"):
        rel = _rel(path, LINUX_DOC) if path.is_relative_to(LINUX_DOC) else ""
        if path.name == "faq.rst.gz" and not rel.startswith("translations/"):
            chunks = split_on(read_text(path), RST_HEADING)
            docs += make_docs("linux-doc-6.1", rel.removesuffix(".gz"), "qa", chunks)
    return docs


def fortunes_qa() -> list[Doc]:
    """Fortune cookies written as 'Q: ... A: ...' riddles."""
    return [
        d
        for pkg, name, i, text in _fortune_entries()
        if text.lstrip().startswith("Q:")
        for d in make_docs(pkg, f"{name}@{i}", "qa", [text])
    ]
