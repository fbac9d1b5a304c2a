"""SOURCES.md of the PRRC v2 pool: what was drawn from where, and the overlap check."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from pool_common import CORPUS_PACKAGES, Candidate
from pool_overlap import MIN_DISTINCT, SPAN

from metamix.base.atomic import write_bytes_atomic


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_sources(path: Path, chosen: dict[str, list[tuple[str, dict, Candidate]]],
                  kinds: tuple[str, ...], picker: Any, overlap: Any,
                  dealt: list[list[dict]], agreement: list[dict], rebuild: str) -> None:
    total = sum(len(b) for b in dealt)
    lines = [
        "# PRRC annotation pool v2: sources",
        "",
        f"{total:,} excerpts of {len(kinds)} kinds of text that the bundled corpus "
        "(`data/sample/SOURCES.md`) does not contain, for people to label on the four PRRC "
        "rubrics (`scorers/prrc/rubrics/*.v1.md`). Every excerpt is cut as the raters see "
        "text: `metamix.scorers.prrc.rubrics.excerpt(text, 2000)`. Nothing was chosen by a "
        "model or a quality signal: within each kind the sampler round-robins over sub-sources "
        "(registry strata, package families, file types) and over packages and files, in the "
        "order of a seeded sha256 hash; long files are cut into pieces of hashed length so "
        "openings and middles, short and full-length excerpts all occur.",
        "",
        f"Files: `batches/batch_01.jsonl` … `batch_{len(dealt):02d}.jsonl` "
        f"({', '.join(str(len(b)) for b in dealt)} records; every batch holds an even share "
        f"of every kind, shuffled by hash) and `batches/agreement.jsonl` ({len(agreement)} "
        "records, the lowest-hash 10% of each batch, identical records) to be labelled a second "
        "time by a different annotator. Fields: `id` (`<kind>:<package>:<path>#<piece>`), "
        "`kind`, `source` (package and version; registry in brackets), `licence`, `excerpt`, "
        "`excerpt_sha256` (of the UTF-8 excerpt).",
        "",
        "Rebuild (same Debian package versions and the pinned registry versions in "
        "`bench/annotation/pool_registry_pins.tsv` give the same bytes; archives are cached "
        "outside the repo):",
        "",
        "```sh",
        rebuild,
        "```",
        "",
        "What else the bytes depend on: English man pages, Info manuals, READMEs, changelogs, "
        "copyright files, `/etc` configs and C headers are drawn from *every* installed package "
        "that is not a corpus source (the machine image plus `install_pool_sources.sh`), so "
        "another image can change those kinds; registry pins that cannot be fetched (a yanked "
        "version) are skipped and recorded as such in the cache. Corpus sources include every "
        "binary package built from the same Debian source (e.g. `git-man` beside `git-doc`).",
        "",
        "Known limits: `literary` comes from three public-domain works only (Carroll, "
        "Shakespeare, Milton, as shipped in Brotli's test data); no other literary text was "
        "found in Debian, PyPI or npm packages in the time available. `dictionary` entries "
        "are naturally short (median under 100 characters).",
        "",
        "## Excerpts per kind",
        "",
        "| kind | excerpts | sources | sub-sources | median chars | under 2,000 chars |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for kind in kinds:
        rows = chosen[kind]
        sizes = [len(r["excerpt"]) for _, r, _ in rows]
        lines.append(
            f"| {kind} | {len(rows)} | {len({r['source'] for _, r, _ in rows})} | "
            f"{len({g for g, _, _ in rows})} | {statistics.median(sizes):.0f} | "
            f"{sum(s < 1990 for s in sizes) / len(sizes):.0%} |")
    lines.append(f"| **total** | {total} | | | | |")
    per_batch = [Counter(r["kind"] for r in b) for b in dealt]
    spread = {k: (min(c[k] for c in per_batch), max(c[k] for c in per_batch)) for k in kinds}
    lines += ["", "Per batch, every kind has between "
              f"{min(lo for lo, _ in spread.values())} and "
              f"{max(hi for _, hi in spread.values())} excerpts.", ""]

    reasons = sorted({reason for reason, _ in picker.skipped})
    skip_rows = ["| kind | " + " | ".join(reasons) + " |",
                 "| --- |" + " ---: |" * len(reasons)]
    for kind in kinds:
        skip_rows.append(f"| {kind} | " + " | ".join(
            str(picker.skipped.get((reason, kind), 0)) for reason in reasons) + " |")
    lines += [
        "## Overlap with the bundled corpus",
        "",
        f"- Package names: no excerpt comes from any of the {len(CORPUS_PACKAGES)} packages "
        "listed in `data/sample/SOURCES.md` (extractors refuse them; the sampler checks again).",
        f"- Text: every excerpt was compared with the {overlap.documents:,} documents of "
        f"`data/sample/train` and `data/sample/validation` ({len(overlap.hashes):,} distinct "
        f"{SPAN}-character windows after collapsing whitespace). Candidates sharing any window "
        f"were skipped, so **no excerpt shares a {SPAN}-character span with the corpus**. "
        f"Windows of fewer than {MIN_DISTINCT} distinct characters (rules of dashes, runs of "
        "`=`) or lying wholly inside markup tags (`<!DOCTYPE html PUBLIC …>`, `<meta "
        "http-equiv=\"Content-Type\" …>`, repeated by every raw HTML page) are not counted as "
        f"shared text; {picker.trivial_shared} kept excerpts contain such a window.",
        "- Candidates the sampler met and skipped before reaching each kind's quota "
        "(the next candidate of the same sub-source took their place):",
        "",
        *skip_rows,
        "",
        "## Sources (kind × source)",
        "",
        "| kind | source (version) | licence | how the text was cut | excerpts |",
        "| --- | --- | --- | --- | ---: |",
    ]
    for kind in kinds:
        groups: dict[tuple[str, str, str], int] = defaultdict(int)
        for _, record, cand in chosen[kind]:
            groups[(record["source"], record["licence"], cand.cut)] += 1
        for (source, licence, cut), n in sorted(groups.items()):
            lines.append(f"| {kind} | {_cell(source)} | {_cell(licence[:80])} | {_cell(cut)} "
                         f"| {n} |")
    write_bytes_atomic(path, ("\n".join(lines) + "\n").encode("utf-8"))
