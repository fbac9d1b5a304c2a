"""Build the PRRC v2 annotation pool: excerpts of kinds of text the bundled corpus lacks.

The shipped PRRC raters learned the corpus's six domains instead of the rubrics; these
excerpts (package READMEs, man pages, papers, logs, configs, licences, minified bundles …,
all from packages that are *not* corpus sources) are what annotators label next. Nothing is
chosen by a model or a quality signal: sources and positions are varied on purpose and every
choice is a seeded hash, so the same package versions give the same bytes.

    bash bench/annotation/install_pool_sources.sh
    .venv/bin/python bench/annotation/build_pool_v2.py            # fetches registry pins too

Writes data/annotations/v2/batches/batch_NN.jsonl, agreement.jsonl and SOURCES.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import re
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pool_debian as deb  # noqa: E402
from pool_common import CORPUS_PACKAGES, Candidate, is_corpus_package, stable_hash  # noqa: E402
from pool_overlap import CorpusOverlap  # noqa: E402
from pool_registry import fetch_all, read_pins  # noqa: E402
from pool_registry_kinds import registry_candidates  # noqa: E402
from pool_report import write_sources  # noqa: E402

from metamix.base.atomic import write_bytes_atomic  # noqa: E402
from metamix.base.progress import counted_progress  # noqa: E402
from metamix.scorers.prrc.rubrics import excerpt  # noqa: E402

EXCERPT_CHARS = 2000
MIN_EXCERPT_CHARS = 40
UNIT_CAP = 12  # excerpts from one file before other files of the kind are exhausted
REPO = Path(__file__).resolve().parents[2]
REBUILD = ("bash bench/annotation/install_pool_sources.sh && "
           ".venv/bin/python bench/annotation/build_pool_v2.py")
EXTRACTORS = {
    "readme": deb.readmes, "manpage": deb.man_pages, "foreign-man": deb.foreign_man_pages,
    "foreign-html": deb.foreign_html, "html-page": deb.html_pages, "info": deb.info_manuals,
    "log": deb.logs, "config": deb.configs, "licence": deb.licences, "minified": deb.minified,
    "changelog": deb.changelogs, "source-code": deb.source_code, "table-data": deb.tables,
    "dictionary": deb.dictionaries, "academic": deb.academic,
}
KINDS = ("academic", "changelog", "config", "dictionary", "foreign-docs", "html-page",
         "info-manual", "licence", "literary", "log", "manpage", "minified", "readme",
         "source-code", "table-data")


def check_corpus_packages(sources_md: Path) -> None:
    """Every package data/sample/SOURCES.md names must be in the exclusion list."""
    try:
        text = sources_md.read_text(encoding="utf-8")
    except OSError as exc:
        raise SystemExit(f"error: cannot read {sources_md}: {exc.strerror}") from None
    named = set()
    for line in text.splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 4 and line.startswith("| ") and cells[1] not in ("source", "---"):
            named |= set(re.findall(r"([a-z0-9][a-z0-9.+-]+) \(", cells[3]))
    if not named:
        raise SystemExit(f"error: {sources_md} lists no packages (table changed?)")
    unknown = sorted(named - CORPUS_PACKAGES)
    if unknown:
        raise SystemExit(f"error: {sources_md} names corpus packages missing from "
                         f"pool_common.CORPUS_PACKAGES: {', '.join(unknown)}")


def collect(cache: Path, console: Console) -> list[Candidate]:
    """Every candidate, Debian extractors first, then the registry archives. Each extractor's
    result is kept in ``cache`` (keyed by the installed package set) so reruns are quick."""
    status = Path("/var/lib/dpkg/status").read_bytes()
    code = b"".join(Path(__file__).with_name(f).read_bytes()
                    for f in ("pool_debian.py", "pool_common.py"))
    stamp = hashlib.sha256(status + code)
    folder = cache / "candidates" / stamp.hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    out: list[Candidate] = []
    with counted_progress(console, console.is_terminal, "{task.fields[name]}") as bar:
        task = bar.add_task("extract", total=len(EXTRACTORS) + 1, name="")
        for name, extractor in EXTRACTORS.items():
            bar.update(task, name=name)
            path = folder / f"{name}.pickle"
            if path.exists():
                found = pickle.loads(path.read_bytes())
            else:
                found = extractor()
                path.write_bytes(pickle.dumps(found))
            out += found
            bar.advance(task)
        bar.update(task, name="registry archives")
        pins = read_pins()
        archives = fetch_all(pins, cache)
        out += registry_candidates(dict(sorted(archives.items(), key=lambda kv: kv[0].label)))
        bar.advance(task)
    console.print(f"registry: {len(archives)}/{len(pins)} pinned archives obtainable")
    return out


def sampling_order(cands: list[Candidate]) -> list[Candidate]:
    """Order one group so that early items spread over packages and files: an item's key is
    its file's rank within the package plus its piece's rank within the file, ties by hash."""
    by_unit: dict[str, list[Candidate]] = defaultdict(list)
    for c in cands:
        by_unit[c.unit].append(c)
    units_of: dict[str, list[str]] = defaultdict(list)
    for unit, items in by_unit.items():
        units_of[items[0].source].append(unit)
    unit_rank = {}
    for units in units_of.values():
        for rank, unit in enumerate(sorted(units, key=lambda u: stable_hash("unit", u))):
            unit_rank[unit] = rank
    keyed = []
    for unit, items in by_unit.items():
        for rank, c in enumerate(sorted(items, key=lambda c: stable_hash("piece", c.id))):
            keyed.append((unit_rank[unit] + rank, stable_hash("order", c.id), c))
    return [c for *_, c in sorted(keyed, key=lambda k: k[:2])]


class Picker:
    """Walks candidates in sampling order and keeps those whose excerpt is long enough, new
    and free of corpus text; counts why the others were skipped."""

    def __init__(self, overlap: CorpusOverlap) -> None:
        self.overlap = overlap
        self.seen: set[str] = set()
        self.skipped: Counter[tuple[str, str]] = Counter()
        self.trivial_shared = 0

    def take(self, c: Candidate) -> dict[str, str] | None:
        if not c.source.endswith(")") and is_corpus_package(c.source.split(" ")[0]):
            self.skipped[("corpus package", c.kind)] += 1
            return None
        cut = excerpt(c.text, EXCERPT_CHARS) if c.text.strip() else ""
        if len(cut) < MIN_EXCERPT_CHARS:
            self.skipped[("shorter than 40 chars", c.kind)] += 1
            return None
        digest = hashlib.sha256(cut.encode("utf-8")).hexdigest()
        if digest in self.seen:
            self.skipped[("exact duplicate excerpt", c.kind)] += 1
            return None
        shared, trivial = self.overlap.shared_windows(cut)
        if shared:
            self.skipped[("shares a 50-char span with the corpus", c.kind)] += 1
            return None
        self.seen.add(digest)
        self.trivial_shared += bool(trivial)
        return {"id": c.id, "kind": c.kind, "source": c.source, "licence": c.licence,
                "excerpt": cut, "excerpt_sha256": digest}


def _phases(groups: dict[str, list[Candidate]]) -> list[dict[str, Iterator[Candidate]]]:
    """Two rounds of per-group queues: first at most UNIT_CAP pieces of any one file, then
    the rest, used only once every group of the kind has run dry in the first round (so one
    long report or novel cannot fill a kind while other files are left)."""
    first: dict[str, list[Candidate]] = {}
    later: dict[str, list[Candidate]] = {}
    for group, cands in sorted(groups.items()):
        taken: Counter[str] = Counter()
        for c in sampling_order(cands):
            (first if taken[c.unit] < UNIT_CAP else later).setdefault(group, []).append(c)
            taken[c.unit] += 1
    return [{g: iter(v) for g, v in first.items()}, {g: iter(v) for g, v in later.items()}]


def pick(cands: list[Candidate], total: int, picker: Picker,
         kinds: tuple[str, ...] = KINDS) -> tuple[list[dict], dict]:
    """Equal shares per kind and, within a kind, round-robin over its groups (sub-sources),
    so no single package family dominates; a kind or group that runs out passes its share on."""
    by_kind: dict[str, dict[str, list[Candidate]]] = defaultdict(lambda: defaultdict(list))
    for c in cands:
        by_kind[c.kind][c.group].append(c)
    missing = [k for k in kinds if k not in by_kind]
    if missing:
        raise SystemExit(f"error: no candidates for kind(s) {', '.join(missing)}")
    phases = {k: _phases(groups) for k, groups in by_kind.items()}
    queues = {k: phases[k].pop(0) for k in by_kind}
    chosen: dict[str, list[tuple[str, dict, Candidate]]] = {k: [] for k in kinds}
    quota = {k: total // len(kinds) + (i < total % len(kinds)) for i, k in enumerate(kinds)}
    open_kinds = list(kinds)
    while sum(len(v) for v in chosen.values()) < total and open_kinds:
        for kind in list(open_kinds):
            if len(chosen[kind]) >= quota[kind]:
                open_kinds.remove(kind)
                continue
            for group in list(queues[kind]):
                if len(chosen[kind]) >= quota[kind]:
                    break
                record = None
                for c in queues[kind][group]:
                    record = picker.take(c)
                    if record:
                        chosen[kind].append((group, record, c))
                        break
                if record is None:
                    del queues[kind][group]
            if not queues[kind] and phases[kind]:
                queues[kind] = phases[kind].pop(0)
            if not queues[kind]:
                open_kinds.remove(kind)
        short = total - sum(len(v) for v in chosen.values())
        if short and not open_kinds:
            growable = [k for k in kinds if queues[k]]
            for k in growable:
                quota[k] += -(-short // len(growable))
            open_kinds = growable
    records = [r for k in kinds for _, r, _ in chosen[k]][:total]
    return records, chosen


def batches(records: list[dict], n_batches: int) -> list[list[dict]]:
    """Deal each kind's records (in hash order) round-robin over the batches, the dealer
    carrying on from kind to kind, so every batch gets floor or ceil of its share of every
    kind and all batches are the same size; then shuffle each batch by hash."""
    by_kind: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_kind[r["kind"]].append(r)
    out: list[list[dict]] = [[] for _ in range(n_batches)]
    dealer = 0
    for kind in sorted(by_kind):
        for r in sorted(by_kind[kind], key=lambda r: stable_hash("deal", r["id"])):
            out[dealer % n_batches].append(r)
            dealer += 1
    return [sorted(b, key=lambda r: stable_hash("shuffle", r["id"])) for b in out]


def jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total", type=int, default=2750)
    parser.add_argument("--batches", type=int, default=11)
    parser.add_argument("--agreement-percent", type=int, default=10)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/prrc_pool_cache"),
                        help="registry archives and extracted candidates (outside the repo)")
    parser.add_argument("--corpus", type=Path, nargs="+",
                        default=[REPO / "data/sample/train", REPO / "data/sample/validation"])
    parser.add_argument("--out", type=Path, default=REPO / "data/annotations/v2")
    args = parser.parse_args()
    console = Console(stderr=True)
    started = time.monotonic()
    for folder in args.corpus:
        if not any(folder.glob("*.parquet")):
            raise SystemExit(f"error: no corpus parquet files in {folder}")

    check_corpus_packages(REPO / "data/sample/SOURCES.md")
    cands = collect(args.cache, console)
    ids = Counter(c.id for c in cands)
    dupes = [i for i, n in ids.items() if n > 1]
    if dupes:
        raise SystemExit(f"error: {len(dupes)} candidate ids repeat, e.g. {dupes[0]}")
    console.print(f"{len(cands):,} candidates; indexing the corpus's 50-char windows …")
    overlap = CorpusOverlap(args.corpus)
    picker = Picker(overlap)
    records, chosen = pick(cands, args.total, picker)
    if len(records) < args.total:
        raise SystemExit(f"error: only {len(records)} excerpts could be drawn, {args.total} asked")

    dealt = batches(records, args.batches)
    per_batch = max(1, round(len(records) * args.agreement_percent / 100 / args.batches))
    agreement = [r for b in dealt
                 for r in sorted(b, key=lambda r: stable_hash("agree", r["id"]))[:per_batch]]
    agreement.sort(key=lambda r: stable_hash("agree-order", r["id"]))
    folder = args.out / "batches"
    folder.mkdir(parents=True, exist_ok=True)
    for i, rows in enumerate(dealt, start=1):
        write_bytes_atomic(folder / f"batch_{i:02d}.jsonl", jsonl(rows))
    write_bytes_atomic(folder / "agreement.jsonl", jsonl(agreement))
    write_sources(args.out / "SOURCES.md", chosen, KINDS, picker, overlap, dealt, agreement,
                  REBUILD)

    table = Counter(r["kind"] for r in records)
    console.print(f"\n{'kind':<14} {'excerpts':>8}")
    for kind in KINDS:
        console.print(f"{kind:<14} {table[kind]:>8}")
    reasons = Counter()
    for (reason, _), n in picker.skipped.items():
        reasons[reason] += n
    console.print(f"{'total':<14} {len(records):>8}   agreement: {len(agreement)}   "
                  f"skipped: {dict(reasons)}   ({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
