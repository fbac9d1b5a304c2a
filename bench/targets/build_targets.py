"""Build the demo's Meta-rater targets from GNU Texinfo manuals that are not corpus sources.

Two targets, from disjoint sets of manuals (assigned by a hash of the manual's name):

* ``data/targets/gnu_manuals.parquet``: one Info node per document (a reference text set;
  Meta-rater measures the proxy's loss on it in nats/token);
* ``data/targets/gnu_cloze.jsonl``: cloze items (two sentences of context, the true next
  sentence and three sentences of other nodes as distractors), scored as the proxy's
  per-token log-likelihood of the true sentence.

Nodes that share any word 13-gram with the training corpus (licence boilerplate, quoted
examples) are dropped and counted, so a selection cannot win by having seen the target.

    bash bench/targets/install_target_sources.sh     # the Debian packages (root)
    .venv/bin/python bench/targets/build_targets.py  # same package versions -> same files
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
import subprocess
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[2]
INFO_DIR = Path("/usr/share/info")
#: manual (info file stem) -> Debian package; none of these packages is a corpus source.
MANUALS = {
    "bc": "bc", "bzip2": "bzip2-doc", "diffutils": "diffutils", "ed": "ed",
    "find": "findutils", "find-maint": "findutils", "gettext": "gettext",
    "autosprintf": "gettext", "gnupg": "gnupg", "gpgrt": "libgpg-error-dev",
    "guile": "guile-3.0-doc", "indent": "indent", "info-stnd": "info",
    "libffi": "libffi-dev", "liboctave": "octave-doc", "libtasn1": "libtasn1-doc",
    "libtool": "libtool-doc", "m4": "m4-doc", "maxima": "maxima-doc",
    "imaxima": "maxima-doc", "xmaxima": "maxima-doc", "mtools": "mtools",
    "nettle": "nettle-dev", "octave": "octave-doc", "recutils": "recutils",
    "rluserman": "readline-common", "screen": "screen", "sharutils": "sharutils",
    "texinfo": "texinfo", "time": "time", "units": "units", "wdiff": "wdiff", "wget": "wget",
}
SALT = "metamix-targets-v1"
MAX_CHARS_PER_MANUAL = 120_000     # big manuals (Guile, Octave) must not dominate
MIN_NODE_CHARS = 300
NGRAM = 13
_HEADER = re.compile(r"^File: [^,]+,\s+Node: ([^,\n]+)")
_IMAGE = re.compile(r"\x00\x08\[image[^\x00]*\x00\x08\]")
_MENU = re.compile(r"^\* Menu:\n(?:.*\n?)*?(?=\n\n|\Z)", re.M)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_WORD = re.compile(r"\w+")


def _digest(*parts: str) -> str:
    return hashlib.sha256(":".join((SALT, *parts)).encode()).hexdigest()


def _info_files(stem: str) -> list[Path]:
    main = INFO_DIR / f"{stem}.info.gz"
    parts = sorted(INFO_DIR.glob(f"{stem}.info-*.gz"),
                   key=lambda p: int(p.name.split("-")[-1].split(".")[0]))
    return parts or [main]


def read_nodes(stem: str) -> list[tuple[str, str]]:
    """(node name, text) of every Info node of a manual, header and menus removed."""
    nodes = []
    for path in _info_files(stem):
        raw = gzip.decompress(path.read_bytes()).decode("utf-8", errors="replace")
        for chunk in raw.split("\x1f\n"):
            first, _, body = chunk.partition("\n")
            match = _HEADER.match(first)
            if not match:
                continue
            text = _MENU.sub("", _IMAGE.sub("", body)).strip()
            text = re.sub(r"\n{3,}", "\n\n", text)
            if len(text) >= MIN_NODE_CHARS:
                nodes.append((match.group(1).strip(), text))
    return nodes


def corpus_ngrams() -> set[int]:
    """Hashes of every word 13-gram of the bundled corpus (train and validation)."""
    seen: set[int] = set()
    for path in sorted((REPO / "data" / "sample").glob("*/*.parquet")):
        for text in pq.read_table(path, columns=["text"]).column(0).to_pylist():
            words = _WORD.findall(text.lower())
            seen.update(hash(" ".join(words[i:i + NGRAM]))
                        for i in range(len(words) - NGRAM + 1))
    return seen


def overlaps(text: str, seen: set[int]) -> bool:
    words = _WORD.findall(text.lower())
    return any(hash(" ".join(words[i:i + NGRAM])) in seen
               for i in range(len(words) - NGRAM + 1))


def _version(package: str) -> str:
    return subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True,
                          text=True, check=False).stdout.strip() or "unknown"


def cloze_items(nodes: list[tuple[str, str, str]], per_node: int = 10) -> list[dict]:
    """Two sentences of context, the true next sentence and three distractors drawn from
    sentences of other nodes of similar length."""
    sentences = []        # (doc id, sentence)
    candidates = []
    for doc_id, _, text in nodes:
        paragraphs = [" ".join(p.split()) for p in text.split("\n\n")]
        for p_index, para in enumerate(paragraphs):
            parts = [s.strip() for s in _SENTENCE.split(para) if s.strip()]
            good = [s for s in parts if 30 <= len(s) <= 240 and s[-1] in ".!?"]
            sentences.extend((doc_id, s) for s in good)
            for i in range(2, len(parts)):
                context = " ".join(parts[i - 2:i])
                answer = parts[i]
                if 60 <= len(context) <= 600 and 30 <= len(answer) <= 240 and answer[-1] in ".!?":
                    candidates.append((doc_id, p_index, i, context, answer))
    by_doc: dict[str, list] = {}
    for cand in candidates:
        by_doc.setdefault(cand[0], []).append(cand)
    pool = sorted(sentences, key=lambda s: _digest("pool", s[0], s[1]))
    items = []
    for doc_id in sorted(by_doc):
        chosen = sorted(by_doc[doc_id], key=lambda c: _digest("pick", doc_id, str(c[1]),
                                                             str(c[2])))[:per_node]
        for _, p_index, i, context, answer in chosen:
            key = _digest("item", doc_id, str(p_index), str(i))
            start = int(key[:8], 16) % len(pool)
            distractors: list[str] = []
            j = start
            while len(distractors) < 3:
                other_doc, sentence = pool[j % len(pool)]
                j += 1
                if other_doc != doc_id and sentence != answer and sentence not in distractors \
                        and abs(len(sentence) - len(answer)) <= max(40, len(answer) // 2):
                    distractors.append(sentence)
            answer_pos = int(key[8:10], 16) % 4
            choices = distractors[:answer_pos] + [answer] + distractors[answer_pos:]
            items.append({"id": f"{doc_id}#{p_index}.{i}", "context": context,
                          "choices": choices, "answer": answer_pos})
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "data" / "targets")
    args = parser.parse_args()
    seen = corpus_ngrams()
    text_nodes: list[tuple[str, str, str]] = []
    cloze_nodes: list[tuple[str, str, str]] = []
    rows = []
    for stem, package in sorted(MANUALS.items()):
        nodes = read_nodes(stem)
        nodes.sort(key=lambda n: _digest(stem, n[0]))
        kept, chars, dropped = [], 0, 0
        for name, text in nodes:
            if chars >= MAX_CHARS_PER_MANUAL:
                break
            if overlaps(text, seen):
                dropped += 1
                continue
            kept.append((f"{stem}:{name}", stem, text))
            chars += len(text)
        target = "cloze" if int(_digest("split", stem)[:8], 16) % 3 == 0 else "text"
        (cloze_nodes if target == "cloze" else text_nodes).extend(kept)
        rows.append((stem, package, _version(package), target, len(nodes), len(kept), dropped,
                     chars))
    args.out.mkdir(parents=True, exist_ok=True)
    text_nodes.sort()
    table = pa.table({"id": [n[0] for n in text_nodes], "text": [n[2] for n in text_nodes],
                      "domain": ["gnu_manuals"] * len(text_nodes),
                      "source": [n[1] for n in text_nodes]})
    pq.write_table(table, args.out / "gnu_manuals.parquet", compression="zstd")
    items = cloze_items(sorted(cloze_nodes))
    with open(args.out / "gnu_cloze.jsonl", "w", encoding="utf-8") as fh:
        for item in items:
            fh.write(json.dumps(item, ensure_ascii=False, sort_keys=True) + "\n")
    totals = Counter({"text": 0, "cloze": 0})
    for row in rows:
        totals[row[3]] += row[5]
    print("| manual | package (version) | target | nodes | kept | dropped (13-gram overlap) "
          "| chars kept |")
    print("|---|---|---|---:|---:|---:|---:|")
    for stem, package, version, target, n, kept, dropped, chars in rows:
        print(f"| {stem} | {package} ({version}) | {target} | {n} | {kept} | {dropped} | "
              f"{chars:,} |")
    print(f"\ntext target: {len(text_nodes)} nodes, {sum(len(n[2]) for n in text_nodes):,} "
          f"chars; cloze: {len(items)} items from {len(cloze_nodes)} nodes")


if __name__ == "__main__":
    main()
