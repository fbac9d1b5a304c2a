"""Build the PRRC v3 annotation pool: excerpts of the kinds of text a web crawl holds.

The v2 raters fail on crawl text (e-mail, spam, news, forums, subtitles, SEO and shop pages,
OCR noise); these excerpts are what annotators label next. Real text comes first, from
pinned PyPI/npm archives (test fixtures: saved pages, cassettes, mail samples) and Debian
packages; then seeded corruptions of good real excerpts (OCR noise at three levels, stripped
punctuation, keyword stuffing, boilerplate around it, case folding, a tokenised dump), each
its own record pointing at its parent, in the parent's batch. Nothing is chosen by a model
or a quality signal: sampling within a kind round-robins over sources in seeded-hash order.

    bash bench/annotation/install_pool_sources_v3.sh
    .venv/bin/python bench/annotation/build_pool_v3.py

Writes data/annotations/v3/batches/batch_NN.jsonl, agreement.jsonl and SOURCES.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import sys
import time
from collections import Counter
from pathlib import Path

from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pool_v3_sources as src  # noqa: E402
from build_pool_v2 import MIN_EXCERPT_CHARS, Picker, check_corpus_packages, pick  # noqa: E402
from pool_common import Candidate, deb_source, is_corpus_package  # noqa: E402
from pool_overlap import CorpusOverlap  # noqa: E402
from pool_registry import Pin, fetch, members  # noqa: E402
from pool_v3_corrupt import corrupt, family_plan  # noqa: E402
from pool_v3_report import write_sources  # noqa: E402
from pool_v3_text import apertium_version  # noqa: E402

from metamix.base.atomic import write_bytes_atomic  # noqa: E402
from metamix.scorers.prrc.rubrics import excerpt  # noqa: E402

EXCERPT_CHARS = 2000
REPO = Path(__file__).resolve().parents[2]
PINS = Path(__file__).with_name("pool_v3_pins.tsv")
# Debian sources and their licence (spamassassin's copyright file is not DEP-5, so the
# licence is read from its text: "Licensed under the Apache License, Version 2.0").
DEBIAN = {"spamassassin": "Apache-2.0 (per /usr/share/doc/spamassassin/copyright)"}
REBUILD = ("bash bench/annotation/install_pool_sources_v3.sh && "
           ".venv/bin/python bench/annotation/build_pool_v3.py")
KINDS = ("blog", "boilerplate-page", "cookie-legal", "email", "forum", "list-table",
         "machine-translated", "news", "product-listing", "spam",
         "tokenised-dump", "transcript-subtitle")
# Kinds of well-formed prose whose excerpts may be parents of corrupted copies.
PARENT_KINDS = ("blog", "email", "forum", "news")
MIN_PARENT_CHARS = 300
RESERVED = tuple(line.strip() for line in (REPO / "docs" / "reserved-for-evaluation.txt")
                 .read_text(encoding="utf-8").splitlines()
                 if line.strip() and not line.startswith("#"))
FIELDS = ("id", "kind", "source", "licence", "excerpt", "excerpt_sha256", "parent_id",
          "corruption")


def jsonl(rows: list[dict]) -> bytes:
    """JSON lines with the characters ``str.splitlines`` breaks on (U+2028, U+2029, NEL)
    escaped, so a reader splitting on any line boundary still gets one record a line."""
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    for ch in ("\u2028", "\u2029", "\x85"):
        text = text.replace(ch, f"\\u{ord(ch):04x}")
    return text.encode("utf-8")


def reserved_in(name: str) -> str | None:
    """The reserved-for-evaluation entry that ``name`` (a package or source) contains."""
    return next((r for r in RESERVED if r in name), None)


def read_pins(path: Path = PINS) -> list[tuple[Pin, str]]:
    rows = path.read_text(encoding="utf-8").splitlines()[1:]
    out = []
    for n, row in enumerate(rows, start=2):
        cells = row.split("\t")
        if len(cells) != 5:
            raise SystemExit(f"error: {path}:{n}: expected 5 tab-separated cells")
        out.append((Pin(*cells[:4]), cells[4]))
    return out


def v2_sources(folder: Path) -> set[str]:
    """Package names of every source of the v2 pool (never reused by v3)."""
    return {json.loads(line)["source"].split(" ")[0]
            for path in sorted(folder.glob("batch_*.jsonl"))
            for line in path.read_text(encoding="utf-8").splitlines()}


def refuse_sources(names: list[str], v2: set[str]) -> None:
    """Exit with one line if any source is reserved for evaluation, a corpus source or a
    v2 source."""
    for name in names:
        if hit := reserved_in(name):
            raise SystemExit(f"error: source {name!r} is reserved for evaluation ({hit!r} in "
                             "docs/reserved-for-evaluation.txt)")
        if name in v2:
            raise SystemExit(f"error: source {name!r} is already a source of the v2 pool")
        if name in DEBIAN and is_corpus_package(name):
            raise SystemExit(f"error: source {name!r} is a source of the bundled corpus")


def collect(pins: list[tuple[Pin, str]], cache: Path, console: Console) -> list[Candidate]:
    """Every candidate: each pin's archive through its extractor, then the Debian samples.
    Results are cached per archive and code version (Apertium calls are slow)."""
    code = b"".join(Path(__file__).with_name(f).read_bytes()
                    for f in ("pool_v3_sources.py", "pool_v3_text.py", "pool_common.py"))
    out: list[Candidate] = []
    for pin, licence in pins:
        archive = fetch(pin, cache)
        if archive is None:
            raise SystemExit(f"error: pinned archive {pin.label} could not be fetched "
                             f"(see {pin.cache_dir(cache)}/FAILED)")
        stamp = hashlib.sha256(code + archive.read_bytes() + licence.encode()
                               + apertium_version().encode()).hexdigest()[:16]
        path = cache / "v3-candidates" / f"{pin.cache_dir(cache).name}-{stamp}.pickle"
        if path.exists():
            found = pickle.loads(path.read_bytes())
        else:
            builder = src.Builder(pin, licence)
            src.extractor_for(pin.name)(builder, dict(members(archive)))
            builder.flush()
            found = builder.out
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(pickle.dumps(found))
        console.print(f"  {pin.label}: {len(found)} candidates")
        out += found
    for package, licence in DEBIAN.items():
        out += src.spamassassin(deb_source(package), licence)
    return out


class V3Picker(Picker):
    """v2's picker (length, duplicates, corpus overlap) that also refuses any excerpt sharing
    a 50-character span with the v2 pool."""

    def __init__(self, overlap: CorpusOverlap, v2: CorpusOverlap) -> None:
        super().__init__(overlap)
        self.v2 = v2

    def take(self, c: Candidate) -> dict[str, str] | None:
        cut = excerpt(c.text, EXCERPT_CHARS) if c.text.strip() else ""
        if len(cut) >= MIN_EXCERPT_CHARS and self.v2.shared_windows(cut)[0]:
            self.skipped[("shares a 50-char span with v2", c.kind)] += 1
            return None
        record = super().take(c)
        if record is not None:
            record.update(parent_id=None, corruption=None)
        return record


def latin(text: str) -> bool:
    """Mostly ASCII letters: corruptions such as case folding need a cased Latin script."""
    letters = [ch for ch in text if ch.isalpha()]
    return bool(letters) and sum(ch.isascii() for ch in letters) >= 0.9 * len(letters)


def choose_parents(records: list[dict], n: int, seed: str) -> list[dict]:
    """``n`` long-enough prose excerpts in Latin script, round-robin over PARENT_KINDS in
    hash order."""
    queues = {k: sorted((r for r in records if r["kind"] == k and latin(r["excerpt"])
                         and len(r["excerpt"]) >= MIN_PARENT_CHARS),
                        key=lambda r: _hash(seed, "parent", r["id"])) for k in PARENT_KINDS}
    chosen: list[dict] = []
    while len(chosen) < n and any(queues.values()):
        for kind in PARENT_KINDS:
            if queues[kind] and len(chosen) < n:
                chosen.append(queues[kind].pop(0))
    if len(chosen) < n:
        raise SystemExit(f"error: only {len(chosen)} excerpts can be parents, {n} asked")
    return chosen


def copies_of(parent: dict, count: int, seed: str, seen: set[str]) -> list[dict]:
    """``count`` corrupted copies of ``parent``, following its seeded plan; a transform that
    leaves the excerpt unchanged or repeats another is passed over for the next in the plan."""
    out = []
    for transform, level in family_plan(_hash(seed, "plan", parent["id"]), count + 4):
        text = corrupt(parent["excerpt"], transform, level,
                       _hash(seed, transform, str(level), parent["id"]))
        cut = excerpt(text, EXCERPT_CHARS)
        digest = hashlib.sha256(cut.encode("utf-8")).hexdigest()
        if len(cut) < MIN_EXCERPT_CHARS or digest in seen:
            continue
        seen.add(digest)
        out.append({"id": f"{parent['id']}~{transform}-{level}", "kind": parent["kind"],
                    "source": parent["source"], "licence": parent["licence"], "excerpt": cut,
                    "excerpt_sha256": digest, "parent_id": parent["id"],
                    "corruption": f"{transform}:{level}"})
        if len(out) == count:
            return out
    raise SystemExit(f"error: fewer than {count} distinct corruptions of {parent['id']}")


def _hash(seed: str, *parts: str) -> int:
    digest = hashlib.sha256("\x1f".join((seed, *parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def deal(units: list[list[dict]], n_batches: int, seed: str) -> list[list[list[dict]]]:
    """Deal units (a family, or one record) round-robin over batches in (kind, hash) order,
    the dealer carrying on from kind to kind, so each batch gets an even share of each kind."""
    out: list[list[list[dict]]] = [[] for _ in range(n_batches)]
    ordered = sorted(units, key=lambda u: (u[0]["kind"], _hash(seed, "deal", u[0]["id"])))
    for i, unit in enumerate(ordered):
        out[i % n_batches].append(unit)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=14)
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--families-per-batch", type=int, default=29,
                        help="originals per batch that get corrupted copies")
    parser.add_argument("--copies", type=int, default=3, help="corrupted copies per original")
    parser.add_argument("--agreement-percent", type=int, default=10)
    parser.add_argument("--seed", default="metamix-pool-v3")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/prrc_pool_cache"))
    parser.add_argument("--corpus", type=Path, nargs="+",
                        default=[REPO / "data/sample/train", REPO / "data/sample/validation"])
    parser.add_argument("--v2", type=Path, default=REPO / "data/annotations/v2/batches")
    parser.add_argument("--out", type=Path, default=REPO / "data/annotations/v3")
    args = parser.parse_args()
    console = Console(stderr=True)
    started = time.monotonic()
    family = 1 + args.copies
    singles_per_batch = args.batch_size - family * args.families_per_batch
    if singles_per_batch < 0:
        raise SystemExit("error: --families-per-batch × (1 + --copies) exceeds --batch-size")
    n_families = args.families_per_batch * args.batches
    n_real = singles_per_batch * args.batches + n_families

    pins = read_pins()
    v2_names = v2_sources(args.v2)
    refuse_sources([p.name for p, _ in pins] + list(DEBIAN), v2_names)
    check_corpus_packages(REPO / "data/sample/SOURCES.md")
    cands = collect(pins, args.cache, console)
    for c in cands:
        if reserved_in(c.source):
            raise SystemExit(f"error: candidate {c.id} comes from a reserved source")
    dupes = [i for i, n in Counter(c.id for c in cands).items() if n > 1]
    if dupes:
        raise SystemExit(f"error: {len(dupes)} candidate ids repeat, e.g. {dupes[0]}")
    console.print(f"{len(cands):,} candidates; indexing corpus and v2 50-char windows …")
    v2_texts = [json.loads(line)["excerpt"] for path in sorted(args.v2.glob("batch_*.jsonl"))
                for line in path.read_text(encoding="utf-8").splitlines()]
    picker = V3Picker(CorpusOverlap(args.corpus), CorpusOverlap.from_texts(v2_texts))
    records, chosen = pick(cands, n_real, picker, KINDS)
    if len(records) < n_real:
        raise SystemExit(f"error: only {len(records)} real excerpts, {n_real} needed")

    parents = choose_parents(records, n_families, args.seed)
    parent_ids = {p["id"] for p in parents}
    families = [[p, *copies_of(p, args.copies, args.seed, picker.seen)] for p in parents]
    singles = [[r] for r in records if r["id"] not in parent_ids]
    dealt_families = deal(families, args.batches, args.seed)
    dealt_singles = deal(singles, args.batches, args.seed)
    batches = [sorted((r for unit in f + s for r in unit),
                      key=lambda r: _hash(args.seed, "shuffle", r["id"]))
               for f, s in zip(dealt_families, dealt_singles, strict=True)]
    per_batch = max(1, round(args.batch_size * args.agreement_percent / 100))
    agreement = [r for b in batches
                 for r in sorted(b, key=lambda r: _hash(args.seed, "agree", r["id"]))[:per_batch]]

    folder = args.out / "batches"
    folder.mkdir(parents=True, exist_ok=True)
    for i, rows in enumerate(batches, start=1):
        write_bytes_atomic(folder / f"batch_{i:02d}.jsonl",
                           jsonl([{k: r[k] for k in FIELDS} for r in rows]))
    write_bytes_atomic(folder / "agreement.jsonl",
                       jsonl([{k: r[k] for k in FIELDS} for r in agreement]))
    write_sources(args.out / "SOURCES.md", chosen, KINDS, picker, batches, agreement, pins,
                  REBUILD, args)

    table = Counter(r["kind"] for b in batches for r in b)
    copies = Counter(r["kind"] for b in batches for r in b if r["corruption"])
    console.print(f"\n{'kind':<20} {'excerpts':>8} {'corrupted':>9}")
    for kind in KINDS:
        console.print(f"{kind:<20} {table[kind]:>8} {copies[kind]:>9}")
    reasons: Counter[str] = Counter()
    for (reason, _), n in picker.skipped.items():
        reasons[reason] += n
    console.print(f"{'total':<20} {sum(table.values()):>8} {sum(copies.values()):>9}   "
                  f"agreement: {len(agreement)}   skipped: {dict(reasons)}   "
                  f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
