"""Candidates for the PRRC v2 pool from pinned PyPI and npm archives.

A member's kind is decided by its path alone (README*, LICENSE*, *.min.js, package.json …),
never by its content's quality; a wheel's README is the long description in its METADATA,
which is what PyPI shows.
"""

from __future__ import annotations

import json
import re
from email.parser import HeaderParser
from pathlib import PurePosixPath

from pool_common import Candidate, html_to_text, normalize, stable_hash, stream_pieces
from pool_registry import Pin, members, read_member

CONFIG_NAMES = {"package.json", "tsconfig.json", "setup.cfg", "tox.ini", "pyproject.toml",
                ".eslintrc", ".eslintrc.json", ".eslintrc.js", ".babelrc", ".prettierrc",
                ".travis.yml", "Cargo.toml", ".editorconfig", "jest.config.js", "MANIFEST.in",
                "webpack.config.js", "rollup.config.js", ".npmignore", ".gitignore",
                "setup.py", "Makefile", "Dockerfile", "bower.json", "composer.json"}
CONFIG_SUFFIXES = (".yml", ".yaml", ".toml", ".ini", ".cfg")
CODE_SUFFIXES = {".js": "javascript", ".mjs": "javascript", ".cjs": "javascript",
                 ".ts": "typescript", ".tsx": "typescript", ".jsx": "javascript",
                 ".py": "python", ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp",
                 ".rs": "rust", ".go": "go", ".java": "java", ".rb": "ruby", ".pyx": "cython",
                 ".vue": "vue", ".svelte": "svelte", ".sh": "shell", ".lua": "lua"}
LITERARY = {"tests/testdata/alice29.txt": "Alice's Adventures in Wonderland (Carroll)",
            "tests/testdata/asyoulik.txt": "As You Like It (Shakespeare)",
            "tests/testdata/plrabn12.txt": "Paradise Lost (Milton)"}
ACADEMIC = {"tests/testdata/lcet10.txt": "Library of Congress report (Canterbury corpus)"}


def kind_of(path: str) -> tuple[str, str] | None:
    """(kind, subgroup) of an archive member by its path, or None to ignore it."""
    p = PurePosixPath(path)
    name, lower = p.name, p.name.lower()
    depth = len(p.parts)
    if path in LITERARY:
        return "literary", "canterbury"
    if path in ACADEMIC:
        return "academic", "report"
    if "node_modules" in p.parts or ".git" in p.parts:
        return None
    if lower.startswith("readme") and depth <= 2:
        return "readme", "readme-file"
    if re.match(r"(changelog|changes|history|news|release)", lower) and depth <= 2:
        return "changelog", "changelog-file"
    if re.match(r"(licen[cs]e|copying|notice|authors)", lower) or "/licenses/" in path:
        return "licence", "licence-file"
    if lower.endswith((".min.js", ".min.css", ".js.map", ".css.map", ".min.mjs")):
        return "minified", "min-" + lower.rsplit(".", 1)[-1]
    if lower.endswith(".log"):
        return "log", "log-file"
    if lower.endswith((".csv", ".tsv")):
        return "table-data", "csv"
    if lower.endswith((".html", ".htm")):
        return "html-page", "html"
    if lower in ("paper.md", "paper.tex") or lower.endswith(".tex"):
        return "academic", "paper-source"
    if name in CONFIG_NAMES or lower.endswith(CONFIG_SUFFIXES) or p.parts[:1] == (".github",):
        return "config", "config-file"
    if lower.endswith(".css"):
        return "minified", "css"
    suffix = p.suffix.lower()
    if suffix in CODE_SUFFIXES and not lower.endswith(".d.ts.map"):
        return "source-code", CODE_SUFFIXES[suffix]
    return None


def _wheel_metadata(files: dict[str, bytes]) -> tuple[str, str]:
    """(licence, long description) from a wheel's METADATA or an sdist's PKG-INFO."""
    for path, data in files.items():
        if path.endswith(".dist-info/METADATA") or path == "PKG-INFO":
            message = HeaderParser().parsestr(data.decode("utf-8", errors="replace"))
            licence = (message.get("License-Expression") or message.get("License") or "").strip()
            if not licence or len(licence) > 80:
                classifiers = [c.split("::")[-1].strip() for c in message.get_all("Classifier", [])
                               if c.startswith("License ::")]
                licence = ", ".join(classifiers) or ("see licence file" if licence else "")
            body = message.get_payload() or message.get("Description") or ""
            return licence or "unspecified", str(body)
    return "unspecified", ""


def _npm_licence(files: dict[str, bytes]) -> str:
    try:
        meta = json.loads(files.get("package.json", b"{}"))
    except (ValueError, UnicodeDecodeError):
        return "unspecified"
    value = meta.get("license") if isinstance(meta, dict) else None
    if isinstance(value, dict):
        value = value.get("type")
    return str(value) if value else "unspecified"


def candidates(pin: Pin, archive_members: dict[str, bytes]) -> list[Candidate]:
    """Every candidate of one pinned package."""
    files = archive_members
    if pin.how == "npm":
        licence, description = _npm_licence(files), ""
    else:
        licence, description = _wheel_metadata(files)
    source = f"{pin.name} {pin.version} ({pin.registry})"
    group_base = pin.stratum
    out: list[Candidate] = []

    def add(kind: str, locator: str, pieces: list[str], group: str, cut: str) -> None:
        unit = f"{pin.name}:{locator}"
        for i, piece in enumerate(pieces):
            text = normalize(piece)
            if text.strip():
                out.append(Candidate(f"{kind}:{unit}#{i}", kind, source, licence, text,
                                     f"{group_base}-{group}", unit, cut))

    if description.strip() and not any(kind_of(p) == ("readme", "readme-file") for p in files):
        add("readme", "METADATA", [description], "long-description",
            "package long description (README as PyPI shows it), whole = one document")
    for path, data in sorted(files.items()):
        found = kind_of(path)
        text = read_member(data) if found else None
        if found is None or text is None:
            continue
        kind, sub = found
        if kind in ("readme", "licence", "config", "academic") and sub != "report":
            add(kind, path, [text], sub, f"whole {sub} = one document")
        elif kind == "html-page":
            raw = stable_hash("raw-html", pin.name, path) % 100 < 25
            add(kind, path, [text if raw else html_to_text(text)], "html-raw" if raw else "html",
                "one page per document, " + ("raw HTML" if raw else "naive tag strip"))
        else:
            low, high = (400, 12000) if kind == "minified" else (250, 6000)
            add(kind, path, stream_pieces(text, f"{pin.name}:{path}", low, high), sub,
                f"{sub} cut at line breaks into pieces of hashed length ({low}-{high} chars)")
    return out


def registry_candidates(archives: dict[Pin, object]) -> list[Candidate]:
    out: list[Candidate] = []
    for pin, archive in archives.items():
        out += candidates(pin, dict(members(archive)))  # type: ignore[arg-type]
    return out
