"""Candidates for the PRRC v2 pool from installed Debian packages (none a corpus source).

Each function returns every candidate of one kind from one family of packages; the builder
samples from them. Files are enumerated in sorted order and pieces are cut by seeded hashes,
so the same package versions give the same candidates.
"""

from __future__ import annotations

import lzma
import os
import re
import subprocess
from functools import cache
from pathlib import Path

from pool_common import (
    Candidate,
    deb_candidates,
    html_to_text,
    is_corpus_package,
    read_bytes_text,
    split_before,
    stable_hash,
    stream_pieces,
)

MAN_SECTIONS = ("1", "3", "5", "7", "8")
MAN_LANGS = {"manpages-de": "de", "manpages-fr": "fr", "manpages-es": "es",
             "manpages-pl": "pl", "manpages-ru": "ru", "manpages-pt-br": "pt_BR",
             "manpages-it": "it"}
TEXT_SUFFIXES = (".conf", ".cfg", ".ini", ".yml", ".yaml", ".toml", ".json", ".service",
                 ".timer", ".socket", ".rules", ".xml", ".cnf", ".properties", "")


@cache
def file_owners() -> dict[str, str]:
    """Installed path -> owning package, from dpkg's file lists (one read, not N dpkg -S)."""
    owners: dict[str, str] = {}
    info = Path("/var/lib/dpkg/info")
    for listing in sorted(info.glob("*.list")):
        package = listing.stem.split(":", 1)[0]
        for line in listing.read_text(encoding="utf-8", errors="replace").splitlines():
            owners.setdefault(line, package)
    return owners


def owned(paths: list[Path]) -> list[tuple[Path, str]]:
    """(path, package) for regular files owned by a package that is not a corpus source."""
    owners = file_owners()
    out = []
    for path in sorted(paths):
        package = owners.get(str(path))
        if package and not is_corpus_package(package) and path.is_file() and not path.is_symlink():
            out.append((path, package))
    return out


def lowest(items: list[tuple[Path, str]], n: int, key: str) -> list[tuple[Path, str]]:
    """The n items with the lowest seeded hash: a fixed random subset before costly work."""
    return sorted(items, key=lambda it: stable_hash(key, str(it[0])))[:n]


def render_man(path: Path, lang: str = "en") -> str:
    """A man page as a terminal shows it at 80 columns, overstrikes removed."""
    env = {**os.environ, "MANWIDTH": "80", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
           "MAN_KEEP_FORMATTING": ""}
    done = subprocess.run(["man", "--nj", "--nh", "-E", "UTF-8", "-l", str(path)],
                          capture_output=True, env=env, timeout=60, check=False)
    cleaned = subprocess.run(["col", "-bx"], input=done.stdout, capture_output=True,
                             env=env, timeout=60, check=False)
    return cleaned.stdout.decode("utf-8", errors="replace")


def man_pages(per_section: int = 140) -> list[Candidate]:
    """English man pages of every installed non-corpus package, rendered as one document."""
    out: list[Candidate] = []
    for section in MAN_SECTIONS:
        pages = owned(list(Path(f"/usr/share/man/man{section}").glob("*")))
        for path, package in lowest(pages, per_section, f"man{section}"):
            text = render_man(path)
            out += deb_candidates("manpage", package, str(path), [text], group=f"man{section}",
                                  cut="man page rendered by man -l at 80 columns, col -bx")
    return out


def foreign_man_pages(per_language: int = 40) -> list[Candidate]:
    out: list[Candidate] = []
    for lang in MAN_LANGS.values():
        pages = owned(list(Path(f"/usr/share/man/{lang}").glob("man*/*")))
        for path, owner in lowest(pages, per_language, f"man-{lang}"):
            out += deb_candidates("foreign-docs", owner, str(path), [render_man(path, lang)],
                                  group=f"man-{lang}",
                                  cut="translated man page rendered by man -l at 80 columns")
    return out


def _html_docs(kind: str, files: list[Path], group: str, raw_share: int, n: int) -> list[Candidate]:
    """HTML pages: most tag-stripped naively (menus, footers kept), ``raw_share``% as the raw
    markup a careless scraper would keep; which is decided by a hash of the path."""
    out: list[Candidate] = []
    for path, owner in lowest(owned(files), n, group):
        html = read_bytes_text(path)
        raw = stable_hash("raw-html", str(path)) % 100 < raw_share
        text = html if raw else html_to_text(html)
        cut = "raw HTML source" if raw else "naive tag strip (navigation kept)"
        out += deb_candidates(kind, owner, str(path), [text], group=group + ("-raw" if raw else ""),
                              cut=f"one page per document, {cut}")
    return out


def html_pages() -> list[Candidate]:
    apache = list(Path("/usr/share/doc/apache2-doc/manual/en").rglob("*.html"))
    pg = list(Path("/usr/share/doc/postgresql-doc-15/html").glob("*.html"))
    sqlite = list(Path("/usr/share/doc/sqlite3").rglob("*.html"))
    r_docs = list(Path("/usr/lib/R/site-library").glob("*/doc/*.html")) + list(
        Path("/usr/lib/R/site-library").glob("*/html/*.html"))
    return (_html_docs("html-page", apache, "apache", 25, 90)
            + _html_docs("html-page", pg, "postgresql", 25, 90)
            + _html_docs("html-page", sqlite, "sqlite", 25, 70)
            + _html_docs("html-page", r_docs, "r-package-html", 25, 40))


def foreign_html() -> list[Candidate]:
    """The Apache manual in its translations (pages that differ from the English one),
    decoded naively (UTF-8, else latin-1), as a careless scraper would."""
    root = Path("/usr/share/doc/apache2-doc/manual")
    files = []
    for lang in sorted(p for p in root.iterdir() if p.is_dir() and p.name != "en"):
        for page in lang.rglob("*.html"):
            english = root / "en" / page.relative_to(lang)
            if not english.is_file() or english.read_bytes() != page.read_bytes():
                files.append(page)
    return _html_docs("foreign-docs", files, "apache-translations", 0, 60)


def info_manuals() -> list[Candidate]:
    """One Info node per document, from every non-corpus manual in /usr/share/info."""
    out: list[Candidate] = []
    for path, package in owned(list(Path("/usr/share/info").glob("*.info*"))):
        nodes = read_bytes_text(path).split("\x1f")
        manual = re.sub(r"\.info.*$", "", path.name)
        out += deb_candidates("info-manual", package, str(path), nodes, group=manual,
                              cut="one Info node per document")
    return out


def _xz_head(path: Path, limit: int = 3_000_000) -> str:
    with lzma.open(path, "rb") as fh:
        return fh.read(limit).decode("utf-8", errors="replace")


def logs() -> list[Candidate]:
    out: list[Candidate] = []
    cut = "log file cut at line breaks into pieces of hashed length (250-6000 chars)"
    f2b = Path("/usr/lib/python3/dist-packages/fail2ban/tests/files")
    for path, package in owned([*f2b.glob("logs/*"), *f2b.glob("*.log")]):
        out += deb_candidates("log", package, str(path),
                              stream_pieces(read_bytes_text(path), str(path)),
                              group="fail2ban-samples", cut=cut)
    for path, package in owned(list(Path("/usr/share/doc/gcc-12-base/test").glob("*.xz"))):
        pieces = stream_pieces(_xz_head(path), str(path))
        out += deb_candidates("log", package, str(path), pieces, group="gcc-testsuite",
                              cut=cut + "; first 3 MB of each log")
    build_logs = [*Path("/usr/share/doc/openjdk-17-jre-headless/test-amd64").glob("*.log*"),
                  Path("/usr/share/doc/python3.11/test_results.gz"),
                  Path("/usr/share/doc/python3.11/pybench.log"),
                  Path("/usr/share/doc/gdb/check.log.gz")]
    for path, package in owned([p for p in build_logs if p.exists()]):
        text = read_bytes_text(path)[:3_000_000]
        out += deb_candidates("log", package, str(path), stream_pieces(text, str(path)),
                              group="build-test-logs", cut=cut + "; first 3 MB of each log")
    return out


def _is_text(path: Path) -> bool:
    try:
        head = path.read_bytes()[:4096]
    except OSError:
        return False
    return b"\x00" not in head and bool(head.strip())


def configs() -> list[Candidate]:
    out: list[Candidate] = []
    cut = "whole file = one document"
    etc = [p for p in Path("/etc").rglob("*") if p.is_file() and p.suffix in TEXT_SUFFIXES]
    for path, package in lowest(owned(etc), 300, "etc"):
        if _is_text(path):
            out += deb_candidates("config", package, str(path), [read_bytes_text(path)],
                                  group="etc", cut=cut)
    examples = [p for p in Path("/usr/share/doc").glob("*/examples/**/*")
                if p.is_file() and (p.suffix in TEXT_SUFFIXES[:-1] or "conf" in p.name)]
    for path, package in lowest(owned(examples), 200, "examples"):
        if _is_text(path):
            out += deb_candidates("config", package, str(path), [read_bytes_text(path)],
                                  group="doc-examples", cut=cut)
    units = list(Path("/usr/lib/systemd/system").glob("*")) + list(
        Path("/lib/systemd/system").glob("*"))
    for path, package in lowest(owned(units), 120, "systemd"):
        if _is_text(path):
            out += deb_candidates("config", package, str(path), [read_bytes_text(path)],
                                  group="systemd-units", cut=cut)
    return out


def licences() -> list[Candidate]:
    """Licence texts and Debian copyright files, cut at line breaks into pieces of hashed
    length, so both whole openings and fragments from deep inside occur."""
    out: list[Candidate] = []
    cut = "cut at line breaks into pieces of hashed length (250-6000 chars)"
    for path, package in owned(list(Path("/usr/share/common-licenses").glob("*"))):
        out += deb_candidates("licence", package, str(path),
                              stream_pieces(read_bytes_text(path), str(path)),
                              group="common-licenses", cut="licence text " + cut,
                              licence="verbatim copying permitted (licence texts)")
    copyrights = list(Path("/usr/share/doc").glob("*/copyright"))
    for path, package in lowest(owned(copyrights), 400, "copyright"):
        text = read_bytes_text(path)
        whole = stable_hash("whole-copyright", str(path)) % 2 == 0
        out += deb_candidates("licence", package, str(path),
                              [text] if whole else stream_pieces(text, str(path)),
                              group="debian-copyright" + ("" if whole else "-piece"),
                              cut="copyright file as one document" if whole
                              else "copyright file " + cut)
    return out


def minified() -> list[Candidate]:
    out: list[Candidate] = []
    files = [p for p in Path("/usr/share/javascript").rglob("*")
             if p.suffix in (".js", ".css", ".map") and p.is_file()]
    for path, package in owned(files):
        minified_name = ".min." in path.name or path.suffix == ".map"
        group = "libjs-" + ("minified" if minified_name else "bundle") + f"-{path.suffix[1:]}"
        pieces = stream_pieces(read_bytes_text(path), str(path), low=400, high=12000)
        out += deb_candidates("minified", package, str(path), pieces, group=group,
                              cut="file cut into pieces of hashed length (400-12000 chars)")
    return out


def changelogs() -> list[Candidate]:
    out: list[Candidate] = []
    entry = re.compile(r"^\S.*; urgency=", re.MULTILINE)
    deb = list(Path("/usr/share/doc").glob("*/changelog.Debian.gz"))
    for path, package in lowest(owned(deb), 250, "changelog.Debian"):
        entries = split_before(read_bytes_text(path)[:200_000], entry)
        out += deb_candidates("changelog", package, str(path), entries, group="debian-changelog",
                              cut="one changelog.Debian entry per document")
    upstream = [p for p in Path("/usr/share/doc").glob("*/*")
                if re.match(r"(changelog|NEWS|CHANGES|HISTORY|RELEASE)", p.name, re.I)
                and "Debian" not in p.name]
    for path, package in lowest(owned(upstream), 250, "changelog.upstream"):
        text = read_bytes_text(path)[:400_000]
        out += deb_candidates("changelog", package, str(path), stream_pieces(text, str(path)),
                              group="upstream-changelog",
                              cut="upstream changelog/NEWS cut at line breaks into pieces "
                                  "of hashed length (250-6000 chars)")
    return out


def readmes() -> list[Candidate]:
    out: list[Candidate] = []
    files = [p for p in Path("/usr/share/doc").glob("*/README*") if p.is_file()]
    for path, package in lowest(owned(files), 400, "readme"):
        group = "debian-readme-debian" if "Debian" in path.name else "debian-readme"
        out += deb_candidates("readme", package, str(path), [read_bytes_text(path)], group=group,
                              cut="whole README = one document")
    return out


def source_code() -> list[Candidate]:
    """Source files in several languages; long files cut at line breaks."""
    families = {
        "go": list(Path("/usr/share/gocode/src").rglob("*.go")),
        "rust": list(Path("/usr/share/cargo/registry").rglob("*.rs")),
        "c-header": list(Path("/usr/include").rglob("*.h")),
        "ruby": list(Path("/usr/lib/ruby/vendor_ruby").rglob("*.rb")),
        "tcl": list(Path("/usr/share/tcltk").rglob("*.tcl")),
        "javascript": list(Path("/usr/share/nodejs").rglob("*.js"))
        + list(Path("/usr/share/nodejs").rglob("*.ts")),
        "r": list(Path("/usr/lib/R/site-library").glob("*/doc/*.R")),
    }
    out: list[Candidate] = []
    for language, files in families.items():
        for path, package in lowest(owned(files), 120, language):
            pieces = stream_pieces(read_bytes_text(path), str(path), low=400, high=8000)
            out += deb_candidates("source-code", package, str(path), pieces,
                                  group=f"code-{language}",
                                  cut="source file cut at line breaks into pieces of hashed "
                                      "length (400-8000 chars)")
    return out


def tables() -> list[Candidate]:
    files = [*Path("/usr/share/unicode").glob("*.txt"), *Path("/usr/share/unicode").glob("*/*.txt"),
             *Path("/usr/share/iso-codes/json").glob("*.json"),
             *Path("/usr/share/misc").glob("*.ids"), *Path("/usr/share/hwdata").glob("*"),
             *Path("/usr/share/distro-info").glob("*.csv"),
             *Path("/usr/share/zoneinfo").glob("*.tab"), Path("/usr/share/dict/american-english"),
             Path("/etc/services"), Path("/etc/protocols"), Path("/etc/mime.types")]
    out: list[Candidate] = []
    for path, package in owned([p for p in files if p.exists()]):
        text = read_bytes_text(path)[:2_000_000]
        out += deb_candidates("table-data", package, str(path),
                              stream_pieces(text, str(path), low=300, high=5000),
                              group="table-" + package,
                              cut="data file cut at line breaks into pieces of hashed length "
                                  "(300-5000 chars)")
    return out


def _b64num(s: str) -> int:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    n = 0
    for ch in s:
        n = n * 64 + alphabet.index(ch)
    return n


def dictionaries() -> list[Candidate]:
    """dictd entries, one per document, of the dictionaries the corpus does not use."""
    import gzip

    out: list[Candidate] = []
    names = {"wn": "dict-wn", "vera": "dict-vera", "elements": "dict-elements",
             "freedict-eng-deu": "dict-freedict-eng-deu",
             "freedict-fra-eng": "dict-freedict-fra-eng",
             "freedict-spa-eng": "dict-freedict-spa-eng"}
    for name, package in names.items():
        base = Path("/usr/share/dictd") / name
        data = gzip.decompress(base.with_suffix(".dict.dz").read_bytes())
        spans: set[tuple[int, int]] = set()
        index = base.with_suffix(".index").read_bytes().decode("utf-8", "replace")
        for line in index.splitlines():
            fields = line.split("\t")
            if len(fields) >= 3:
                spans.add((_b64num(fields[1]), _b64num(fields[2])))
        chosen = sorted(spans, key=lambda s: stable_hash(name, str(s[0])))[:400]
        for start, length in sorted(chosen):
            text = data[start:start + length].decode("utf-8", errors="replace")
            out += deb_candidates("dictionary", package, f"{name}@{start}", [text],
                                  group=f"dict-{name}", cut="one dictd entry per document")
    return out


def academic() -> list[Candidate]:
    """R package vignettes (most are journal papers): the abstract and each section of the
    Sweave/knitr source, and pages of the PDF built from it as pdftotext extracts them."""
    out: list[Candidate] = []
    root = Path("/usr/lib/R/site-library")
    section = re.compile(r"^\\(section|subsection)\*?\{|^#{1,2} ", re.MULTILINE)
    for path, package in owned([*root.glob("*/doc/*.Rnw"), *root.glob("*/doc/*.Rmd")]):
        text = read_bytes_text(path)
        abstract = re.search(r"\\begin\{abstract\}(.*?)\\end\{abstract\}|\\Abstract\{(.*?)\n\}",
                             text, re.S)
        if abstract:
            out += deb_candidates("academic", package, f"{path}:abstract",
                                  [abstract.group(0)], group="vignette-abstract",
                                  cut="abstract of a Sweave/knitr paper, LaTeX source")
        out += deb_candidates("academic", package, str(path), split_before(text, section),
                              group="vignette-latex-section",
                              cut="one (sub)section of a Sweave/knitr paper, LaTeX source")
    for path, package in owned(list(root.glob("*/doc/*.pdf"))):
        done = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"],
                              capture_output=True, timeout=120, check=False)
        pages = done.stdout.decode("utf-8", errors="replace").split("\f")
        out += deb_candidates("academic", package, str(path), pages, group="vignette-pdf-page",
                              cut="one PDF page per document, pdftotext default layout")
    return out
