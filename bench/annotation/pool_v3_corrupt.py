"""Seeded corruptions of good real excerpts for the PRRC v3 pool.

Why: raters must learn that the *same* content gets worse readability and cleanliness when a
crawl damages it. Each transform is a deterministic function of the text, the level and a
seed string, so the same parent gives the same copy on every rebuild. Levels grow harsher
(OCR noise 1-3: roughly 3%, 8% and 16% of characters touched).
"""

from __future__ import annotations

import random
import re
import string

OCR_RATE = {1: 0.03, 2: 0.08, 3: 0.16}
# Confusions a scanner's OCR makes (glyph shapes), both directions where they are plausible.
OCR_SWAPS = {
    "m": ["rn", "nn", "in"], "rn": ["m"], "e": ["c", "o", "e"], "c": ["e", "o"],
    "a": ["o", "n", "u"], "o": ["0", "a", "c"], "l": ["1", "I", "i", "|"], "i": ["l", "1", "í"],
    "I": ["l", "1", "|"], "h": ["b", "li"], "b": ["h", "6"], "n": ["u", "ri", "ii"],
    "u": ["n", "ii"], "S": ["5", "$"], "s": ["a", "5"], "O": ["0", "Q"], "t": ["f", "l"],
    "f": ["t", "ſ"], "d": ["cl", "a"], "w": ["vv", "v"], "y": ["v", "j"], "g": ["q", "9"],
    "B": ["8", "R"], "E": ["F", "B"], "r": ["t", "i"], ",": [".", "'"], ".": [",", "·"],
    "W": ["VV"], "N": ["H", "K"],
}
STRAYS = list("'.,:;~^-_|\"`·")
SPAM_TERMS = ["best price", "cheap", "buy now", "free shipping", "top rated", "discount",
              "official site", "2024", "online", "deals", "near me", "review", "sale",
              "guaranteed", "click here", "order today", "limited offer", "#1"]
STOPWORDS = frozenset((  # noqa: SIM905 (a word list reads better as text)
    "a an the and or but if of to in on at by for with from as is are was were be "
    "been being it its this that these those he she they we you i his her their our "
    "your not no so than then there here which who whom what when where why how all "
    "any each more most other some such can could will would shall should may might "
    "must do does did have has had also just into over under about after before very "
).split())
NAV = ["Home", "News", "World", "Business", "Tech", "Sport", "Lifestyle", "Opinion", "Video",
       "Podcasts", "Subscribe", "Sign in", "Register", "Newsletter", "Contact", "About us",
       "Shop", "Deals", "Events", "Jobs", "Weather", "Local", "Entertainment", "Health"]
BOILER_TOP = [
    "Skip to main content", "Menu", "Search", "We use cookies to improve your experience on "
    "our site. By continuing to browse you agree to our use of cookies. Accept | Learn more",
    "Advertisement", "Share this article: Facebook Twitter WhatsApp Email Print",
    "Breaking: sign up for our daily newsletter", "You are here: Home > Articles",
]
BOILER_BOTTOM = [
    "Related articles", "Most popular", "Comments (0) | Leave a comment", "Tags:",
    "Advertisement", "Recommended for you", "Follow us on Facebook, Twitter and Instagram",
    "© 2024 All rights reserved. | Privacy Policy | Terms of Use | Cookie Settings | Sitemap",
    "Back to top", "Loading...", "Read more", "Previous article | Next article",
]
TRANSFORMS = ("ocr-noise", "strip-punctuation", "keyword-stuffing", "boilerplate-wrap",
              "case-fold", "tokenised-dump")
LEVELS = {"ocr-noise": (1, 2, 3), "strip-punctuation": (1, 2), "keyword-stuffing": (1, 2),
          "boilerplate-wrap": (1, 2), "case-fold": (1,), "tokenised-dump": (1,)}


def ocr_noise(text: str, level: int, rng: random.Random) -> str:
    """Glyph confusions, dropped and doubled characters, split and joined words, stray marks
    and broken-off line-end hyphenation, at a per-character rate set by ``level``."""
    rate = OCR_RATE[level]
    out: list[str] = []
    i = 0
    while i < len(text):
        two, ch = text[i:i + 2], text[i]
        roll = rng.random()
        if roll >= rate:
            out.append(ch)
            i += 1
            continue
        action = rng.random()
        if two in OCR_SWAPS and action < 0.2:
            out.append(rng.choice(OCR_SWAPS[two]))
            i += 2
            continue
        if ch in OCR_SWAPS and action < 0.6:
            out.append(rng.choice(OCR_SWAPS[ch]))
        elif ch == " " and action < 0.75:
            pass  # two words run together
        elif ch.isalpha() and action < 0.75:
            out.append(ch + " ")  # a word split apart
        elif action < 0.85:
            out.append(rng.choice(STRAYS) + ch)
        elif action < 0.93 and ch.isalpha():
            out.append(ch + "-\n")  # hyphenation left by a line end
        else:
            pass  # character lost
        i += 1
    return "".join(out)


def strip_punctuation(text: str, level: int, rng: random.Random) -> str:
    """Level 1: punctuation removed; level 2: also every line joined and case flattened."""
    table = str.maketrans("", "", string.punctuation + "“”‘’–—…«»")
    out = text.translate(table)
    if level >= 2:
        out = re.sub(r"\s+", " ", out).lower()
    return re.sub(r"[ \t]+", " ", out).strip()


def _keywords(text: str, rng: random.Random) -> list[str]:
    words = [w.lower() for w in re.findall(r"[A-Za-z][A-Za-z'-]{3,}", text)
             if w.lower() not in STOPWORDS]
    counts: dict[str, int] = {}
    for w in words:
        counts[w] = counts.get(w, 0) + 1
    top = sorted(counts, key=lambda w: (-counts[w], w))[:6] or ["best"]
    return [f"{rng.choice(SPAM_TERMS)} {w}" if rng.random() < 0.5 else w for w in top]


def keyword_stuffing(text: str, level: int, rng: random.Random) -> str:
    """Keyword phrases made of the text's own frequent words and shop terms, pushed into the
    text every few sentences (level 1) or after nearly every one plus a tag cloud (level 2)."""
    keys = _keywords(text, rng)
    sentences = re.split(r"(?<=[.!?])\s+", text)
    every = 3 if level == 1 else 1
    out = []
    for n, sentence in enumerate(sentences):
        out.append(sentence)
        if n % every == every - 1:
            out.append(" ".join(rng.choice(keys).title() if rng.random() < 0.5
                                else rng.choice(keys) for _ in range(1 + level)) + ".")
    body = " ".join(out)
    head = " | ".join(k.title() for k in keys[:3 + level])
    cloud = ", ".join(rng.choice(keys) for _ in range(6 * level))
    return f"{head}\n\n{body}\n\nTags: {cloud}"


def boilerplate_wrap(text: str, level: int, rng: random.Random) -> str:
    """Navigation, banners and footer lines around the text (more of them at level 2)."""
    nav = " | ".join(rng.sample(NAV, 6 + 4 * level))
    top = rng.sample(BOILER_TOP, 2 + 2 * level)
    bottom = rng.sample(BOILER_BOTTOM, 3 + 3 * level)
    if level >= 2:
        bottom.insert(1, "\n".join(rng.sample(NAV, 8)))
    return "\n".join([nav, *top, "", text, "", *bottom])


def case_fold(text: str, level: int, rng: random.Random) -> str:
    return text.lower()


def tokenised_dump(text: str, level: int, rng: random.Random) -> str:
    """Lower-cased, tokenised one sentence a line (``n't`` split, punctuation spaced), each
    line prefixed with a classifier label, as in a fastText training dump."""
    sentences = [s for s in re.split(r"(?<=[.!?])\s+|\n+", text) if s.strip()]
    lines = []
    for s in sentences:
        s = re.sub(r"n't\b", " n't", s.lower())
        s = re.sub(r"([^\w\s'])", r" \1 ", s)
        s = re.sub(r"'(s|re|ve|ll|d|m)\b", r" '\1", s)
        label = rng.choice(["__label__0", "__label__1", "__label__pos", "__label__neg"])
        lines.append(f"{label} " + " ".join(s.split()))
    return "\n".join(lines)


FUNCS = {"ocr-noise": ocr_noise, "strip-punctuation": strip_punctuation,
         "keyword-stuffing": keyword_stuffing, "boilerplate-wrap": boilerplate_wrap,
         "case-fold": case_fold, "tokenised-dump": tokenised_dump}


def corrupt(text: str, transform: str, level: int, seed: int) -> str:
    """The ``transform`` of ``text`` at ``level``; ``seed`` fixes every random choice."""
    return FUNCS[transform](text, level, random.Random(seed))


def family_plan(seed: int, copies: int) -> list[tuple[str, int]]:
    """Which (transform, level) pairs one parent gets: always one OCR level, then distinct
    other transforms (or another OCR level), all drawn from ``seed``."""
    rng = random.Random(seed)
    plan = [("ocr-noise", rng.choice(LEVELS["ocr-noise"]))]
    options = [(t, lv) for t in TRANSFORMS for lv in LEVELS[t]
               if not (t == "ocr-noise" and lv == plan[0][1])]
    while len(plan) < copies and options:
        pick = rng.choice(options)
        plan.append(pick)
        options = [o for o in options if o[0] != pick[0] or o[0] == "ocr-noise"]
        options = [o for o in options if o != pick]
    return plan
