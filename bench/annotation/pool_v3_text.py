"""Turning the files of the PRRC v3 pool's sources into the text a crawl would hold.

Why a library for each format: a crawler does not see HTML, MIME or JSON, it sees what an
extractor makes of them. HTML pages go through html2text (links, images and emphasis
dropped, no re-wrapping), which keeps navigation, footers and banners, as a visible-text
dump of a crawl does; e-mail goes through the standard library's ``email`` parser (headers a
list archive shows, then the plain-text body, or the HTML body through html2text); feeds
through ``xml.etree``. Machine translation is Apertium (Debian ``apertium-eng-spa``), a real
rule-based MT system, so its output has the faults such text has in a crawl.
"""

from __future__ import annotations

import email
import email.policy
import re
import subprocess
import xml.etree.ElementTree as ET

import html2text

MAIL_HEADERS = ("From", "To", "Date", "Subject")


def visible_text(html: str) -> str:
    """The visible text of a page as html2text renders it, boilerplate included."""
    parser = html2text.HTML2Text()
    parser.ignore_links = True
    parser.ignore_images = True
    parser.ignore_emphasis = True
    parser.body_width = 0
    parser.unicode_snob = True
    text = parser.handle(html)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def mail_text(raw: bytes) -> str | None:
    """A message as a list archive shows it: a few headers, a blank line, the body; None if
    the message has no readable text part."""
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        part = msg.get_body(preferencelist=("plain", "html"))
        if part is None:
            return None
        body = part.get_content()
        if part.get_content_subtype() == "html":
            body = visible_text(body)
        head = [f"{h}: {msg[h]}" for h in MAIL_HEADERS if msg[h]]
    except (LookupError, ValueError, TypeError, AttributeError, KeyError, IndexError):
        return None
    if not isinstance(body, str) or not body.strip():
        return None
    return "\n".join(head) + "\n\n" + body.strip()


def split_mbox(raw: bytes) -> list[bytes]:
    """The messages of a file that may hold several (mbox ``From `` separators)."""
    parts = re.split(rb"(?m)^From \S+.*\n", raw)
    return [p for p in parts if p.strip()] or [raw]


def feed_items(xml_text: str) -> list[str]:
    """Title and body of each RSS/Atom item (the body is HTML, rendered as visible text);
    an unparsable feed gives the visible text of the whole file as one item."""
    try:
        root = ET.fromstring(re.sub(r"^\s*<\?xml[^>]*\?>", "", xml_text))
    except (ET.ParseError, ValueError):
        return [visible_text(xml_text)]
    items = []
    for node in root.iter():
        tag = node.tag.rsplit("}", 1)[-1]
        if tag not in ("item", "entry"):
            continue
        fields = {c.tag.rsplit("}", 1)[-1]: "".join(c.itertext()) for c in node}
        body = fields.get("content") or fields.get("encoded") or fields.get("description") \
            or fields.get("summary") or ""
        text = f"{fields.get('title', '').strip()}\n\n{visible_text(body)}".strip()
        if text:
            items.append(text)
    return items


def string_values(source: str) -> list[str]:
    """The double-quoted string values of a JS/JSON object literal (a banner's texts)."""
    values = re.findall(r'"[A-Za-z_]\w*"\s*:\s*"((?:[^"\\]|\\.)*)"', source)
    return [bytes(v, "utf-8").decode("unicode_escape", errors="replace")
            if "\\u" in v else v.replace('\\"', '"') for v in values]


def yaml_strings(node: object) -> list[str]:
    """Every string of a parsed YAML document, depth first, in document order."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for v in node.values() for s in yaml_strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in yaml_strings(v)]
    return []


SEPARATOR = "ZQXSEP{}ZQX"  # an unknown word: Apertium passes it through unchanged


def apertium_many(texts: list[str], modes: tuple[str, ...]) -> list[str]:
    """Apertium's translation of each text through ``modes`` in turn (e.g. ``("eng-spa",
    "spa-eng")`` for a round trip), all texts in one run per mode, joined by separator
    words; ``-u`` leaves unknown words unmarked, as published MT output is."""
    joined = "\n\n".join(f"{SEPARATOR.format(i)}\n\n{t}" for i, t in enumerate(texts))
    for mode in modes:
        joined = subprocess.run(["apertium", "-u", mode], input=joined, capture_output=True,
                                text=True, check=True, timeout=3600).stdout
    parts = re.split(r"\s*ZQXSEP(\d+)ZQX\s*", joined)
    out = {int(parts[i]): parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}
    if sorted(out) != list(range(len(texts))):
        raise RuntimeError("apertium output lost a separator")
    return [out[i] for i in range(len(texts))]


def apertium_version() -> str:
    done = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "apertium", "apertium-eng-spa"],
                          capture_output=True, text=True, check=False)
    return done.stdout.strip()
