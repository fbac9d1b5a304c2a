"""Build the bundled real-text sample corpus under ``data/sample/``.

Why: scorers, selectors and mixture code need a small, openly licensed, *realistic* corpus that
ships with the repo and can be rebuilt offline. All text comes from Debian packages (installed by
``bench/corpus/install_sources.sh``); with the same package versions the output is byte-identical:
files are enumerated via ``dpkg -L`` and sorted, sampling is by a seeded hash, and Parquet is
written with fixed settings.

Usage: ``.venv/bin/python bench/corpus/build_sample.py [--out data/sample]``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

import extractors as ex  # noqa: E402
from textutil import Doc, dpkg_version  # noqa: E402

SEED = "metamix-sample-v1"
SHARD_ROWS = 2_000
ZSTD_LEVEL = 19
DOMAINS = ("web", "code", "books", "reference", "technical", "qa")
SCHEMA = pa.schema([(c, pa.string()) for c in ("id", "text", "domain", "source")])
REBUILD = "bash bench/corpus/install_sources.sh && .venv/bin/python bench/corpus/build_sample.py"


@dataclass(frozen=True)
class Source:
    """An extractor with its budget (MB of text, ``None`` = take everything) and the facts
    that SOURCES.md reports."""

    name: str
    domain: str
    packages: tuple[str, ...]
    licence: str
    cutting: str
    extract: Callable[[], list[Doc]]
    budget_mb: float | None = None


PSF = "PSF License 2.0 (Python docs/stdlib)"
PERL = "GPL-1+ or Artistic (Perl)"
# fmt: off
SOURCES: tuple[Source, ...] = (
    Source("python-html", "web", ("python3.11-doc",), PSF,
           "one HTML page per doc, naive tag strip (nav, sidebars, footers kept)",
           ex.python_html, 5.0),
    Source("debian-reference", "web", ("debian-reference-en",), "GPL-2+",
           "one HTML chapter per doc, naive tag strip", ex.debian_reference),
    Source("r-manuals", "web", ("r-doc-html",), "GPL-2",
           "one HTML manual per doc (R-FAQ excluded), naive tag strip", ex.r_manuals),
    Source("zsh-html", "web", ("zsh-doc",), "Zsh licence (MIT-like)",
           "one HTML page per doc (FAQ excluded), naive tag strip", ex.zsh_html),
    Source("bash-html", "web", ("bash-doc",), "GPL-3+ / GFDL-1.3 (manual)",
           "one HTML manual per doc, naive tag strip", ex.bash_html),
    Source("fortunes", "web", ("fortunes-min", "fortunes"), "BSD (fortune-mod collection)",
           "one cookie per doc (Q:/A: riddles go to qa)", ex.fortunes_web, 1.0),
    Source("debian-meta", "web", ex.META_PACKAGES, "each package's own licence",
           "copyright file = one doc; newest ~120k chars of changelog.Debian, entries grouped "
           "to <=8k chars", ex.debian_meta),
    Source("python-stdlib", "code",
           ("libpython3.11-minimal", "libpython3.11-stdlib", "python3-lib2to3"), PSF,
           "one .py file per doc, cut at blank lines into <=10k-char pieces",
           ex.python_stdlib, 4.5),
    Source("perl-modules", "code", ("perl-modules-5.36",), PERL,
           "one .pm file per doc, cut at blank lines into <=10k-char pieces",
           ex.perl_modules, 3.5),
    Source("emacs-lisp", "code", ("emacs-el",), "GPL-3+",
           "one .el file per doc, cut at blank lines into <=10k-char pieces", ex.emacs_lisp, 3.5),
    Source("bash-examples", "code", ("bash-doc",), "GPL-3+ (mostly)",
           "one example script per doc", ex.bash_examples),
    Source("bible", "books", ("bible-kjv-text", "bible-kjv"),
           "KJV text public domain (UK Crown rights aside); packaging GPL-2+",
           "one chapter per doc, printed by `bible -l80`", ex.bible_chapters),
    Source("python-prose", "books", ("python3.11-doc",), PSF,
           "tutorial/howto/whatsnew reST sources, one file per doc", ex.python_prose),
    Source("debian-handbook", "books", ("debian-handbook",), "GPL-2+ or CC-BY-SA-3.0",
           "English HTML, one section page per doc, naive tag strip", ex.debian_handbook),
    Source("perl-tutorials", "books", ("perl-doc",), PERL,
           "perl*tut/intro/style/hist/... pods, one pod per doc", ex.perl_tutorials),
    Source("gcide", "reference", ("dict-gcide",), "GPL-3+ (GCIDE, from Webster's 1913)",
           "one dictd entry per doc", lambda: ex.dict_entries("dict-gcide", "gcide"), 3.5),
    Source("foldoc", "reference", ("dict-foldoc",), "GFDL-1.1+",
           "one dictd entry per doc", lambda: ex.dict_entries("dict-foldoc", "foldoc"), 2.5),
    Source("jargon", "reference", ("dict-jargon",), "public domain (Jargon File 4.4.7)",
           "one dictd entry per doc", lambda: ex.dict_entries("dict-jargon", "jargon")),
    Source("devil", "reference", ("dict-devil",), "public domain (Bierce, 1911)",
           "one dictd entry per doc", lambda: ex.dict_entries("dict-devil", "devil")),
    Source("linux-docs", "technical", ("linux-doc-6.1",), "GPL-2 (mostly)",
           "one .rst/.txt file per doc (translations and FAQs excluded)", ex.linux_docs, 6.5),
    Source("git-manuals", "technical", ("git-doc",), "GPL-2",
           "one AsciiDoc .txt page per doc (gitfaq excluded)", ex.git_manuals),
    Source("perl-reference", "technical", ("perl-doc",), PERL,
           "remaining perl*.pod manuals, one pod per doc", ex.perl_reference, 2.0),
    Source("perl-faq", "qa", ("perl-doc", "perl-modules-5.36"), PERL,
           "perlfaq1-9, perlunifaq and module FAQs, one =head2 question per doc", ex.perl_faq),
    Source("python-faq", "qa", ("python3.11-doc",), PSF,
           "FAQ reST sources, one section heading (question) per doc", ex.python_faq),
    Source("debian-faq", "qa", ("debian-faq", "debian-faq-de", "debian-faq-fr"),
           "verbatim copying permitted (SPI)",
           "text edition (en/de/fr), one numbered question per doc", ex.debian_faq),
    Source("emacs-faq", "qa", ("emacs-common",), "Emacs FAQ notice (free redistribution)",
           "one Info node per doc", ex.emacs_faq),
    Source("django-faq", "qa", ("python-django-doc",), "BSD-3-Clause",
           "HTML, one <h2> question per doc, naive tag strip", ex.django_faq),
    Source("r-zsh-git-faq", "qa", ("r-doc-html", "zsh-doc", "git-doc"), "GPL-2 / Zsh / GPL-2",
           "R FAQ & Zsh FAQ HTML one section per doc; gitfaq one question per doc",
           ex.r_zsh_git_faq),
    Source("linux-faq", "qa", ("linux-doc-6.1",), "GPL-2",
           "kernel faq.rst files, one section per doc", ex.linux_faq),
    Source("fortunes-qa", "qa", ("fortunes-min", "fortunes"), "BSD (fortune-mod collection)",
           "cookies that are Q:/A: riddles, one per doc", ex.fortunes_qa),
)
# fmt: on


def _hash(s: str) -> int:
    return int(hashlib.sha1(f"{SEED}:{s}".encode()).hexdigest(), 16)


def is_validation(doc_id: str) -> bool:
    """~2% of each domain, by an unseeded hash of the id so any consumer can recompute it."""
    return int(hashlib.sha1(doc_id.encode()).hexdigest(), 16) % 50 == 0


def sample(docs: list[Doc], budget_mb: float | None) -> list[Doc]:
    """Keep whole files/entries (all ``#n`` pieces of one locator together), in seeded-hash order,
    until ``budget_mb`` MB of text is reached."""
    if budget_mb is None:
        return docs
    groups: dict[str, list[Doc]] = defaultdict(list)
    for d in docs:
        groups[d.id.rsplit("#", 1)[0]].append(d)
    kept: list[Doc] = []
    total = 0
    for key in sorted(groups, key=_hash):
        if total >= budget_mb * 1e6:
            break
        kept += groups[key]
        total += sum(len(d.text) for d in groups[key])
    return kept


def write_parquet(docs: list[Doc], path: Path) -> None:
    """Rows sorted by id; zstd at a high level; fixed writer settings for reproducibility."""
    docs = sorted(docs, key=lambda d: d.id)
    cols = {c: [getattr(d, c) for d in docs] for c in SCHEMA.names}
    table = pa.table(cols, schema=SCHEMA)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        table, path, compression="zstd", compression_level=ZSTD_LEVEL,
        use_dictionary=["domain", "source"], row_group_size=SHARD_ROWS,
    )  # fmt: skip


def write_split(docs: list[Doc], out: Path) -> dict[str, dict[str, list[Doc]]]:
    """Write train shards (hash-spread, <= SHARD_ROWS) and one validation file per domain."""
    layout: dict[str, dict[str, list[Doc]]] = {"train": {}, "validation": {}}
    for domain in DOMAINS:
        mine = [d for d in docs if d.domain == domain]
        val = [d for d in mine if is_validation(d.id)]
        train = sorted((d for d in mine if not is_validation(d.id)), key=lambda d: _hash(d.id))
        n_shards = -(-len(train) // SHARD_ROWS)
        for k in range(n_shards):
            layout["train"][f"{domain}-{k:03d}"] = train[k::n_shards]
        layout["validation"][domain] = val
    for split, files in layout.items():
        for name, rows in files.items():
            write_parquet(rows, out / split / f"{name}.parquet")
    return layout


def _mb(docs: list[Doc]) -> float:
    return sum(len(d.text.encode()) for d in docs) / 1e6


def sources_md(selected: dict[str, list[Doc]], layout: dict[str, dict[str, list[Doc]]]) -> str:
    """Human-readable provenance: packages+versions, licences, cutting rules, sizes."""
    lines = [
        "# Sample corpus: sources",
        "",
        "Real, openly licensed text from Debian 12 packages, cut into documents and bucketed into",
        "SlimPajama-like domains. Text is decoded and whitespace-normalised only (trailing blanks,",
        "blank-line runs); HTML is stripped *naively* so navigation/footers remain as web noise.",
        f"Sampling within a source is by `sha1('{SEED}:' + file)`; validation is",
        "`int(sha1(id).hexdigest(), 16) % 50 == 0`. Ids are `<package>:<path-or-entry>#<n>`.",
        "",
        "Rebuild (same package versions give byte-identical files):",
        "",
        "```sh",
        REBUILD,
        "```",
        "",
        "## Sources",
        "",
        "| source | domain | Debian packages (version) | licence | documents cut as | docs | MB |",
        "| --- | --- | --- | --- | --- | ---: | ---: |",
    ]
    for s in SOURCES:
        pkgs = ", ".join(f"{p} ({dpkg_version(p)})" for p in s.packages)
        docs = selected[s.name]
        lines.append(
            f"| {s.name} | {s.domain} | {pkgs} | {s.licence} | {s.cutting} | {len(docs)} "
            f"| {_mb(docs):.2f} |"
        )
    lines += [
        "",
        "## Domains (MB = UTF-8 MB of text)",
        "",
        "| domain | train docs | train MB | validation docs | validation MB |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    totals = [0, 0.0, 0, 0.0]
    for domain in DOMAINS:
        tr = [d for k, v in layout["train"].items() if k.startswith(domain + "-") for d in v]
        va = layout["validation"][domain]
        row = [len(tr), _mb(tr), len(va), _mb(va)]
        totals = [a + b for a, b in zip(totals, row, strict=True)]
        lines.append(f"| {domain} | {row[0]} | {row[1]:.2f} | {row[2]} | {row[3]:.2f} |")
    lines.append(f"| **total** | {totals[0]} | {totals[1]:.2f} | {totals[2]} | {totals[3]:.2f} |")
    return "\n".join(lines) + "\n"


def manifest(out: Path) -> dict[str, dict[str, int | str]]:
    """rows/bytes/sha256 for every file under ``out`` except the manifest itself."""
    entries: dict[str, dict[str, int | str]] = {}
    for path in sorted(out.rglob("*")):
        if not path.is_file() or path.name == "MANIFEST.json":
            continue
        data = path.read_bytes()
        entry: dict[str, int | str] = {
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        if path.suffix == ".parquet":
            entry["rows"] = pq.ParquetFile(path).metadata.num_rows
        entries[path.relative_to(out).as_posix()] = entry
    return entries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data/sample"))
    args = parser.parse_args(argv)
    t0 = time.monotonic()
    needed = sorted({p for s in SOURCES for p in s.packages})
    missing = [
        p for p in needed if subprocess.run(["dpkg-query", "-W", p], capture_output=True).returncode
    ]
    if missing:
        sys.exit(f"missing Debian packages {missing}: run bash bench/corpus/install_sources.sh")

    selected: dict[str, list[Doc]] = {}
    for s in SOURCES:
        docs = sample(s.extract(), s.budget_mb)
        assert docs and all(d.domain == s.domain and d.text.strip() for d in docs), s.name
        selected[s.name] = docs
        print(f"{s.name:18s} {s.domain:10s} {len(docs):7d} docs {_mb(docs):7.2f} MB", flush=True)
    all_docs = [d for docs in selected.values() for d in docs]
    ids = [d.id for d in all_docs]
    assert len(ids) == len(set(ids)), "document ids must be unique"

    out: Path = args.out
    for stale in ("train", "validation"):
        shutil.rmtree(out / stale, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    layout = write_split(all_docs, out)
    report = sources_md(selected, layout)
    (out / "SOURCES.md").write_text(report, encoding="utf-8")
    entries = manifest(out)
    (out / "MANIFEST.json").write_text(
        json.dumps({"files": entries}, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    print(report[report.index("## Domains") :])
    print(f"{len(all_docs)} docs, {_mb(all_docs):.2f} MB text, {time.monotonic() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
