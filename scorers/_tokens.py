"""A vectorized approximation of spaCy's blank English tokenizer over raw UTF-8 bytes.

datatrove counts words with spaCy, which costs milliseconds per document. Its rules are
simple enough to apply to a whole batch at once with numpy: split on whitespace, then in
each whitespace chunk peel prefix punctuation off the front ("(", quotes, "$"...), suffix
punctuation off the back (",", ")", quotes, "." after a lowercase letter or digit...),
and split a few infixes (hyphen between letters, "." between lowercase and uppercase...).
Punctuation anywhere else stays inside the token ("\\p{Script", "/usr", "C++").
Exceptions we mirror: single letters with a period ("n.", "A."), dotted abbreviations
("e.g.", "U.S."), a few titles ("Mr."), URLs, and contractions ("do" + "n't", "it" + "'s").
Emoticons and spaCy's long special-case list are not reproduced.

Only non-alphanumeric characters need rules; they are a few percent of the bytes, so the
per-character work runs on that subset. Token identity is a 64-bit hash of the token's
bytes (exact for tokens up to 24 bytes, which is nearly all of them).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pyarrow as pa

from scorers._charsets import PUNCTUATION_SET

# --- per-character flags -----------------------------------------------------------------
SPACE, WORD, ALPHA, LOWER, UPPER, DIGIT = 1, 2, 4, 8, 16, 32
PREFIX, SUFFIX, ICON, QUOTE, PUNCT_LIST, HYPHEN = 64, 128, 256, 512, 1024, 2048
SENTENCE_END, UNICODE_PUNCT, SYMBOL_SET, NUMERIC = 4096, 8192, 16384, 32768

_SPACY_PUNCT = set(
    [
        "…",
        ",",
        ":",
        ";",
        "!",
        "?",
        "¿",
        "؟",
        "¡",
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        "<",
        ">",
        "_",
        "#",
        "*",
        "&",
        "。",
        "？",
        "！",
        "，",
        "、",
        "；",
        "：",
        "～",
        "·",
        "।",
        "،",
        "۔",
        "؛",
        "٪",
    ]
)
_SPACY_QUOTES = set(
    [
        "'",
        '"',
        "”",
        "“",
        "`",
        "‘",
        "´",
        "’",
        "‚",
        ",",
        "„",
        "»",
        "«",
        "「",
        "」",
        "『",
        "』",
        "（",
        "）",
        "〔",
        "〕",
        "【",
        "】",
        "《",
        "》",
        "〈",
        "〉",
        "〈",
        "〉",
        "⟦",
        "⟧",
    ]
)
_SPACY_CURRENCY = set(
    [
        "$",
        "£",
        "€",
        "¥",
        "฿",
        "₽",
        "﷼",
        "₴",
        "₠",
        "₡",
        "₢",
        "₣",
        "₤",
        "₥",
        "₦",
        "₧",
        "₨",
        "₩",
        "₪",
        "₫",
        "₭",
        "₮",
        "₯",
        "₰",
        "₱",
        "₲",
        "₳",
        "₵",
        "₶",
        "₷",
        "₸",
        "₹",
        "₺",
        "₻",
        "₼",
        "₾",
        "₿",
    ]
)
#: spaCy sentencizer's default punct_chars (a token equal to one ends a sentence)
SENTENCE_END_CHARS = (
    "!.?։؟۔܀܁܂߹।॥၊။።፧፨᙮᜵᜶᠃᠉᥄᥅᪨᪩᪪᪫᭚᭛᭞᭟᰻᰼᱾᱿‼‽⁇⁈⁉⸮⸼꓿꘎꘏꛳꛷꡶꡷꣎꣏꤯꧈꧉꩝꩞꩟꫰꫱꯫﹒﹖﹗！．？"
    "𐩖𐩗𑁇𑁈𑂾𑂿𑃀𑃁𑅁𑅂𑅃𑇅𑇆𑇍𑇞𑇟𑈸𑈹𑈻𑈼𑊩𑑋𑑌𑗂𑗃𑗉𑗊𑗋𑗌𑗍𑗎𑗏𑗐𑗑𑗒𑗓𑗔𑗕𑗖𑗗𑙁𑙂𑜼𑜽𑜾𑩂𑩃𑪛𑪜𑱁𑱂𖩮𖩯𖫵𖬷𖬸𖭄𛲟𝪈｡。"
)
#: spaCy special cases (tokenizer exceptions that stay one token): adjacent tokens spelling
#: one of these are merged, as spaCy does after splitting affixes.
SPECIAL_TOKENS: frozenset[str] = frozenset(
    (
        "'",
        "''",
        "'Cause",
        "'Cos",
        "'Coz",
        "'Cuz",
        "'S",
        "'bout",
        "'cause",
        "'cos",
        "'coz",
        "'cuz",
        "'d",
        "'em",
        "'ll",
        "'nuff",
        "'re",
        "'s",
        "(*_*)",
        "(-8",
        "(-:",
        "(-;",
        "(-_-)",
        "(._.)",
        "(:",
        "(;",
        "(=",
        "(>_<)",
        "(^_^)",
        "(o:",
        ")-:",
        "):",
        "-_-",
        "-__-",
        "._.",
        "0.0",
        "0.o",
        "0_0",
        "0_o",
        "8)",
        "8-)",
        "8-D",
        ":'(",
        ":')",
        ":'-(",
        ":'-)",
        ":(",
        ":((",
        ":(((",
        ":()",
        ":)",
        ":))",
        ":)))",
        ":*",
        ":-(",
        ":-((",
        ":-(((",
        ":-)",
        ":-))",
        ":-)))",
        ":-*",
        ":-/",
        ":-0",
        ":-3",
        ":->",
        ":-D",
        ":-O",
        ":-P",
        ":-X",
        ":-]",
        ":-o",
        ":-p",
        ":-x",
        ":-|",
        ":-}",
        ":/",
        ":0",
        ":1",
        ":3",
        ":>",
        ":D",
        ":O",
        ":P",
        ":X",
        ":]",
        ":o",
        ":o)",
        ":p",
        ":x",
        ":|",
        ":}",
        ";)",
        ";-)",
        ";-D",
        ";D",
        ";_;",
        "<.<",
        "</3",
        "<3",
        "<33",
        "<333",
        "<space>",
        "=(",
        "=)",
        "=/",
        "=3",
        "=D",
        "=[",
        "=]",
        "=|",
        ">.<",
        ">.>",
        ">:(",
        ">:o",
        "><(((*>",
        "@_@",
        "Adm.",
        "Ak.",
        "Ala.",
        "Apr.",
        "Ariz.",
        "Ark.",
        "Aug.",
        "Bros.",
        "C++",
        "Calif.",
        "Co.",
        "Colo.",
        "Conn.",
        "Corp.",
        "D.C.",
        "Dec.",
        "Del.",
        "Doin'",
        "Dr.",
        "E.G.",
        "E.g.",
        "Feb.",
        "Fla.",
        "Ga.",
        "Gen.",
        "Goin'",
        "Gov.",
        "Havin'",
        "I.E.",
        "I.e.",
        "Ia.",
        "Id.",
        "Ill.",
        "Inc.",
        "Ind.",
        "Jan.",
        "Jr.",
        "Jul.",
        "Jun.",
        "Kan.",
        "Kans.",
        "Ky.",
        "La.",
        "Lovin'",
        "Ltd.",
        "Ma'am",
        "Mar.",
        "Mass.",
        "Md.",
        "Messrs.",
        "Mich.",
        "Minn.",
        "Miss.",
        "Mo.",
        "Mont.",
        "Mr.",
        "Mrs.",
        "Ms.",
        "Mt.",
        "N.C.",
        "N.D.",
        "N.H.",
        "N.J.",
        "N.M.",
        "N.Y.",
        "Neb.",
        "Nebr.",
        "Nev.",
        "Nothin'",
        "Nov.",
        "Nuthin'",
        "O'clock",
        "O.O",
        "O.o",
        "O_O",
        "O_o",
        "Oct.",
        "Okla.",
        "Ol'",
        "Ore.",
        "Pa.",
        "Ph.D.",
        "Prof.",
        "Rep.",
        "Rev.",
        "S.C.",
        "Sen.",
        "Sep.",
        "Sept.",
        "Somethin'",
        "St.",
        "Tenn.",
        "V.V",
        "V_V",
        "Va.",
        "Wash.",
        "Wis.",
        "[-:",
        "[:",
        "[=",
        '\\")',
        "\\n",
        "\\t",
        "]=",
        "^_^",
        "^__^",
        "^___^",
        "a.",
        "a.m.",
        "and/or",
        "b.",
        "c.",
        "co.",
        "d.",
        "doin'",
        "e.",
        "e.g.",
        "f.",
        "g.",
        "goin'",
        "h.",
        "havin'",
        "i.",
        "i.e.",
        "j.",
        "k.",
        "l.",
        "lovin'",
        "m.",
        "ma'am",
        "n.",
        "nothin'",
        "nuthin'",
        "o'clock",
        "o.",
        "o.0",
        "o.O",
        "o.o",
        "o_0",
        "o_O",
        "o_o",
        "ol'",
        "p.",
        "p.m.",
        "q.",
        "r.",
        "s.",
        "somethin'",
        "t.",
        "u.",
        "v.",
        "v.s.",
        "v.v",
        "v_v",
        "vs.",
        "w.",
        "w/o",
        "x.",
        "y.",
        "z.",
    )
)


def char_flags(ch: str) -> int:
    """Flags of one character (used to build the ASCII table and, lazily, for others)."""
    flags = 0
    category = unicodedata.category(ch)
    if ch.isspace():
        flags |= SPACE
    if ch.isalpha():
        flags |= ALPHA | WORD
        flags |= LOWER if ch.islower() else 0
        flags |= UPPER if ch.isupper() else 0
    if category[0] in "NM":
        flags |= WORD
    if ch in "0123456789":
        flags |= DIGIT
    if ch in _SPACY_PUNCT or ch in _SPACY_QUOTES:
        flags |= PREFIX | SUFFIX
    if ch in _SPACY_CURRENCY or ch in "§%=":
        flags |= PREFIX
    if ch in "—–":
        flags |= PREFIX | SUFFIX | HYPHEN
    if category == "So":
        flags |= ICON | PREFIX | SUFFIX
    flags |= QUOTE if ch in _SPACY_QUOTES else 0
    flags |= PUNCT_LIST if ch in _SPACY_PUNCT else 0
    flags |= HYPHEN if ch in "-~" else 0
    flags |= SENTENCE_END if ch in SENTENCE_END_CHARS else 0
    flags |= UNICODE_PUNCT if category[0] == "P" else 0
    flags |= SYMBOL_SET if ch in PUNCTUATION_SET else 0
    flags |= NUMERIC if ch.isnumeric() else 0
    if not flags & (WORD | SPACE) and category[0] not in "PSCZ":
        flags |= WORD
    return flags


ASCII_FLAGS = np.array([char_flags(chr(i)) for i in range(128)], dtype=np.int32)
_non_ascii_cache: dict[int, int] = {}


def _flags_of_code_points(code_points: np.ndarray) -> np.ndarray:
    unique, inverse = np.unique(code_points, return_inverse=True)
    values = np.empty(unique.size, dtype=np.int32)
    for index, cp in enumerate(unique.tolist()):
        cached = _non_ascii_cache.get(cp)
        if cached is None:
            cached = char_flags(chr(cp)) if cp < 0x110000 and not 0xD800 <= cp < 0xE000 else 0
            _non_ascii_cache[cp] = cached
        values[index] = cached
    return values[inverse]


def token_hash(token: str) -> int:
    """The hash ``tokenize`` gives a token with this text (for stop-word lookups)."""
    data = np.frombuffer(token.encode("utf-8") + b"\0" * 16, dtype=np.uint8)
    starts = np.array([0])
    ends = np.array([len(token.encode("utf-8"))])
    return int(_hash_spans(data, starts, ends)[0])


_LOW_BYTE_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [2**64 - 1], dtype=np.uint64)


def _hash_spans(padded: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """64-bit hashes of byte spans from their first, middle and last 8 bytes and length
    (exact identity up to 24 bytes; ``padded`` has at least 8 zero bytes past the data)."""
    words = np.ndarray(
        shape=(padded.size - 7,), dtype="<u8", buffer=padded.data, offset=0, strides=(1,)
    )
    length = ends - starts
    h = words[starts] & _LOW_BYTE_MASKS[np.minimum(length, 8)]
    with np.errstate(over="ignore"):
        h = (h + length.astype(np.uint64)) * np.uint64(0x9E3779B97F4A7C15)
        long = np.flatnonzero(length > 8)
        if long.size:
            tail = words[ends[long] - 8] * np.uint64(0xBF58476D1CE4E5B9)
            very_long = length[long] > 16
            middle_at = starts[long] + np.maximum(length[long] - 8, 0) // 2
            tail ^= np.where(very_long, words[middle_at], np.uint64(0)) * np.uint64(
                0x94D049BB133111EB
            )
            h[long] ^= tail + (h[long] >> np.uint64(31))
        h ^= h >> np.uint64(29)
    return h.view(np.int64)


@dataclass(frozen=True)
class Tokens:
    """Word tokens of every row of a string array, in row order."""

    row: np.ndarray  # int64 row of each token, non-decreasing
    start: np.ndarray  # byte offsets into ``data``
    end: np.ndarray
    hash: np.ndarray  # int64 identity of the token text
    n_chars: np.ndarray  # int64 code points
    has_alpha: np.ndarray  # bool: contains an alphabetic character
    non_symbol: np.ndarray  # bool: contains a character outside datatrove's PUNCTUATION_SET
    is_sentence_end: np.ndarray  # bool: a single sentence-ending character
    is_punct: np.ndarray  # bool: only Unicode punctuation (spaCy's is_punct)
    data: np.ndarray  # the padded UTF-8 bytes

    def __len__(self) -> int:
        return int(self.row.size)

    @cached_property
    def length_prefix(self) -> np.ndarray:
        return np.concatenate(([0], np.cumsum(self.n_chars)))

    def texts(self) -> list[str]:
        """Token strings (tests and debugging only)."""
        raw = self.data.tobytes()
        return [raw[s:e].decode("utf-8") for s, e in zip(self.start, self.end, strict=True)]


def utf8_buffer(strings: pa.Array) -> tuple[np.ndarray, int, np.ndarray]:
    """The UTF-8 bytes of a non-null Arrow string array, zero-padded by 16 bytes (so 8-byte
    reads past any position are safe), their length, and each row's byte offsets."""
    if pa.types.is_large_string(strings.type):
        strings = strings.cast(pa.string())
    if len(strings) == 0:
        return np.zeros(16, dtype=np.uint8), 0, np.zeros(1, dtype=np.int64)
    offsets = np.frombuffer(strings.buffers()[1], dtype=np.int32)[
        strings.offset : strings.offset + len(strings) + 1
    ].astype(np.int64)
    data_buffer = strings.buffers()[2]
    raw = np.frombuffer(data_buffer, np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    base = int(offsets[0])
    size = int(offsets[-1] - base)
    data = np.zeros(size + 16, dtype=np.uint8)
    data[:size] = raw[base : base + size]
    return data, size, offsets - base


def decode_leads(data: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions, byte lengths and flags of every non-ASCII character."""
    b = data[:size]
    leads = np.flatnonzero(b >= 0xC0)
    lead_len = np.where(b[leads] >= 0xF0, 4, np.where(b[leads] >= 0xE0, 3, 2))
    if leads.size == 0:
        return leads, lead_len, np.zeros(0, np.int32)
    return leads, lead_len, _flags_of_code_points(_decode(data, leads, lead_len))


def mark_chars(size: int, leads: np.ndarray, lead_len: np.ndarray, which: np.ndarray) -> np.ndarray:
    """Byte mask covering every byte of the non-ASCII characters selected by ``which``."""
    mask = np.zeros(size, dtype=bool)
    for extra in range(4):
        chosen = which & (lead_len > extra)
        mask[np.minimum(leads[chosen] + extra, size - 1)] = True
    return mask


@dataclass(frozen=True)
class ByteClasses:
    """Byte-level character classes of a UTF-8 buffer, shared by the tokenizer and the
    RedPajama signals (computed once per batch)."""

    space: np.ndarray  # bool per byte: part of a whitespace character
    letter: np.ndarray  # bool per byte: ASCII letter
    digit: np.ndarray  # bool per byte: ASCII digit
    leads: np.ndarray  # positions of non-ASCII characters
    lead_len: np.ndarray  # their byte lengths
    lead_flags: np.ndarray  # their flags


def byte_classes(data: np.ndarray, size: int) -> ByteClasses:
    b = data[:size]
    leads, lead_len, lead_flags = decode_leads(data, size)
    space = (b == 32) | ((b - np.uint8(9)) < 5) | ((b - np.uint8(28)) < 4)
    if leads.size:
        space |= mark_chars(size, leads, lead_len, (lead_flags & SPACE).astype(bool))
    letter = ((b | np.uint8(0x20)) - np.uint8(97)) < 26
    digit = (b - np.uint8(48)) < 10
    return ByteClasses(space, letter, digit, leads, lead_len, lead_flags)


def tokenize_bytes(strings: pa.Array) -> Tokens:
    """spaCy-like tokens of every string in ``strings`` (a non-null Arrow string array)."""
    return _tokenize(*utf8_buffer(strings))


def tokenize_buffer(
    data: np.ndarray, size: int, offsets: np.ndarray, classes: ByteClasses | None = None
) -> Tokens:
    """``tokenize_bytes`` on the output of ``utf8_buffer`` (read-only use of ``data``)."""
    return _tokenize(data, size, offsets, classes)


def _empty_tokens(data: np.ndarray) -> Tokens:
    none = np.zeros(0, dtype=np.int64)
    no = np.zeros(0, dtype=bool)
    return Tokens(none, none, none, none, none, no, no, no, no, data)


def _tokenize(
    data: np.ndarray, size: int, offsets: np.ndarray, classes: ByteClasses | None = None
) -> Tokens:
    if size == 0:
        return _empty_tokens(data)
    b = data[:size]
    # byte comparisons are far cheaper than table lookups over every byte
    classes = classes if classes is not None else byte_classes(data, size)
    space = classes.space
    alnum = classes.letter | classes.digit

    leads, lead_len, lead_flags = classes.leads, classes.lead_len, classes.lead_flags
    continuation = (b & 0xC0) == 0x80

    row_starts = offsets[:-1][offsets[:-1] < offsets[1:]]
    row_ends = offsets[1:][offsets[:-1] < offsets[1:]]
    prev_space = np.empty(size, dtype=bool)
    prev_space[1:] = space[:-1]
    prev_space[:1] = True
    prev_space[row_starts] = True
    next_space = np.empty(size, dtype=bool)
    next_space[:-1] = space[1:]
    next_space[-1:] = True
    next_space[row_ends - 1] = True
    chunk_start_mask = ~space & prev_space & ~continuation
    chunk_starts = np.flatnonzero(chunk_start_mask)
    if chunk_starts.size == 0:
        return _empty_tokens(data)
    chunk_ends = np.flatnonzero(~space & next_space) + 1
    if chunk_starts.size != chunk_ends.size:  # malformed UTF-8 at a row edge; be safe
        chunk_ends = chunk_ends[np.searchsorted(chunk_ends, chunk_starts, side="right")]

    # Candidate characters: everything that is neither space nor part of a word.
    ascii_candidates = np.flatnonzero(~alnum & ~space & (b < 0x80))
    ascii_candidate_flags = ASCII_FLAGS[b[ascii_candidates]]
    lead_candidates = (lead_flags & (WORD | SPACE)) == 0
    if lead_candidates.any():  # merge the two sorted position lists
        positions = np.concatenate((ascii_candidates, leads[lead_candidates]))
        flags = np.concatenate((ascii_candidate_flags, lead_flags[lead_candidates]))
        lengths = np.concatenate(
            (np.ones(ascii_candidates.size, np.int64), lead_len[lead_candidates])
        )
        order = np.argsort(positions, kind="stable")
        positions, flags, lengths = positions[order], flags[order], lengths[order]
    else:
        positions, flags = ascii_candidates, ascii_candidate_flags
        lengths = np.ones(ascii_candidates.size, np.int64)

    def flags_at(pos: np.ndarray) -> np.ndarray:
        """Flags of the characters starting at ``pos`` (0 outside [0, size))."""
        pos = np.asarray(pos)
        out = np.zeros(pos.size, dtype=np.int32)
        inside = (pos >= 0) & (pos < size)
        p = pos[inside]
        byte = b[p]
        value = ASCII_FLAGS[np.where(byte < 0x80, byte, 0)]
        non_ascii = byte >= 0x80
        if non_ascii.any():
            idx = np.clip(np.searchsorted(leads, p[non_ascii]), 0, max(leads.size - 1, 0))
            value[non_ascii] = np.where(leads[idx] == p[non_ascii], lead_flags[idx], 0)
        out[inside] = value
        return out

    def prev_start(pos: np.ndarray) -> np.ndarray:
        """Start of the character before ``pos`` (walks back over continuation bytes)."""
        prev = pos - 1
        for _ in range(3):
            back = (prev > 0) & continuation[np.maximum(prev, 0)]
            prev = np.where(back, prev - 1, prev)
        return prev

    chunk = np.searchsorted(chunk_starts, positions, side="right") - 1
    cs, ce = chunk_starts[chunk], chunk_ends[chunk]
    nxt = positions + lengths
    has_next = nxt < ce
    next_flags = np.where(has_next, flags_at(np.minimum(nxt, size - 1)), 0)
    has_prev = positions > cs
    prev_pos = prev_start(positions)
    prev_flags = np.where(has_prev, flags_at(np.maximum(prev_pos, 0)), 0)
    byte = b[positions]
    # two characters back is only needed around "." and hyphens
    prev2_pos = np.full(positions.size, -1, dtype=np.int64)
    prev2_flags = np.zeros(positions.size, dtype=np.int32)
    needs = np.flatnonzero((byte == ord(".")) | (flags & HYPHEN).astype(bool))
    if needs.size:
        prev2_pos[needs] = prev_start(np.maximum(prev_pos[needs], 0))
    has_prev2 = has_prev & (prev_pos > cs) & (prev2_pos >= 0)
    if needs.size:
        prev2_flags[needs] = np.where(
            has_prev2[needs], flags_at(np.maximum(prev2_pos[needs], 0)), 0
        )
    is_dot = byte == ord(".")
    # ".." runs form one token
    dot_run_cont = is_dot & has_prev & (b[np.maximum(positions - 1, 0)] == ord("."))
    dot_run_next = is_dot & has_next & (b[np.minimum(nxt, size - 1)] == ord("."))
    ellipsis = dot_run_cont | dot_run_next

    # Runs of adjacent candidates inside one chunk.
    adjacent = np.zeros(positions.size, dtype=bool)
    adjacent[1:] = (nxt[:-1] == positions[1:]) & (chunk[1:] == chunk[:-1])
    run_id = np.cumsum(~adjacent) - 1
    run_first = np.flatnonzero(~adjacent)
    run_last = np.r_[run_first[1:] - 1, positions.size - 1] if positions.size else run_first

    # Prefixes: a run that starts the chunk, while every character so far is a prefix.
    prefix_ok = (flags & PREFIX).astype(bool) | ellipsis
    prefix_ok |= (byte == ord("+")) & ~(next_flags & DIGIT).astype(bool)
    bad_before = np.cumsum(~prefix_ok)
    run_bad_base = (bad_before - ~prefix_ok)[run_first][run_id]
    in_prefix = (positions[run_first] == cs[run_first])[run_id] & (bad_before - run_bad_base == 0)

    # Suffixes: a run that ends the chunk, while every character from the end is a suffix.
    dot_suffix = is_dot & (
        (prev_flags & (DIGIT | LOWER | QUOTE | PUNCT_LIST)).astype(bool)
        | np.isin(b[np.maximum(prev_pos, 0)], np.frombuffer(b"%-+", np.uint8)) & has_prev
        | ((prev_flags & UPPER).astype(bool) & (prev2_flags & UPPER).astype(bool))
    )
    single_letter = (
        has_prev & (prev_flags & ALPHA).astype(bool) & ~(prev2_flags & WORD).astype(bool)
    )
    dotted = (
        has_prev2 & (prev_flags & ALPHA).astype(bool) & (b[np.maximum(prev2_pos, 0)] == ord("."))
    )
    dot_suffix &= ~single_letter & ~dotted  # titles ("Mr.") are merged back as specials
    suffix_ok = (flags & SUFFIX).astype(bool) | ellipsis | dot_suffix
    suffix_ok |= (_byte_set(b"%+")[byte]) & (prev_flags & DIGIT).astype(bool)
    bad_after = np.cumsum(~suffix_ok[::-1])[::-1]
    run_bad_tail = (bad_after - ~suffix_ok)[run_last][run_id]
    ends_chunk = (nxt[run_last] == ce[run_last])[run_id]
    in_suffix = ends_chunk & (bad_after - run_bad_tail == 0) & ~in_prefix

    # Infixes, never inside URLs.
    url_chunk = _url_chunks(b, chunk_starts, chunk_ends)
    in_core = ~in_prefix & ~in_suffix & ~url_chunk[chunk]
    nf, pf = next_flags, prev_flags
    infix = (
        (flags & ICON).astype(bool) | ellipsis | (byte == 0xE2) & (flags & PUNCT_LIST).astype(bool)
    )
    infix |= (
        _byte_set(b"+-*^")[byte]
        & (pf & DIGIT).astype(bool)
        & ((nf & DIGIT).astype(bool) | (b[np.minimum(nxt, size - 1)] == ord("-")))
    )
    infix |= is_dot & (pf & (LOWER | QUOTE)).astype(bool) & (nf & (UPPER | QUOTE)).astype(bool)
    infix |= (byte == ord(",")) & (pf & ALPHA).astype(bool) & (nf & ALPHA).astype(bool)
    # hyphens ("-", "--", "—", "~") between an alphanumeric and a letter
    alnum_before = (pf & (ALPHA | DIGIT)).astype(bool)
    is_hyphen = (flags & HYPHEN).astype(bool)
    next_next_flags = np.zeros(positions.size, dtype=np.int32)
    hyphens = np.flatnonzero(is_hyphen & has_next)
    if hyphens.size:
        after_next = nxt[hyphens] + 1
        next_next_flags[hyphens] = np.where(
            after_next < ce[hyphens], flags_at(np.minimum(after_next, size - 1)), 0
        )
    second_of_pair = (
        is_hyphen & (pf & HYPHEN).astype(bool) & (prev2_flags & (ALPHA | DIGIT)).astype(bool)
    )
    infix |= (
        is_hyphen
        & alnum_before
        & (
            (nf & ALPHA).astype(bool)
            | ((nf & HYPHEN).astype(bool) & (next_next_flags & ALPHA).astype(bool))
        )
    )
    infix |= second_of_pair & (nf & ALPHA).astype(bool)
    infix |= (
        _byte_set(b":<>=/")[byte] & (pf & (ALPHA | DIGIT)).astype(bool) & (nf & ALPHA).astype(bool)
    )
    infix &= in_core

    starts = [chunk_starts]
    lone = in_prefix | in_suffix | infix
    # a continuing "." of an ellipsis or "-" of a dash run does not start a token
    continues = (ellipsis & dot_run_cont) | (
        (flags & HYPHEN).astype(bool) & has_prev & (pf & HYPHEN).astype(bool) & infix
    )
    starts.append(positions[lone & ~continues])
    after = lone & ~(ellipsis & dot_run_next)
    after &= ~((flags & HYPHEN).astype(bool) & (nf & HYPHEN).astype(bool) & infix)
    starts.append(nxt[after & has_next])
    starts.extend(_contraction_starts(b, positions, flags, prev_flags, nxt, ce, size))
    token_start = np.concatenate(starts)
    token_start.sort()
    token_start = token_start[np.r_[True, token_start[1:] != token_start[:-1]]]
    # every chunk start is a token start, so chunk ids are a running count
    token_chunk = np.cumsum(chunk_start_mask[token_start]) - 1
    token_start, token_chunk = _merge_special_tokens(data, token_start, token_chunk, chunk_ends)
    following = np.r_[token_start[1:], size]
    token_end = np.minimum(following, chunk_ends[token_chunk])
    chunk_row = np.searchsorted(offsets, chunk_starts, side="right") - 1

    non_space_leads = (lead_flags & SPACE) == 0
    special_pos = np.concatenate((ascii_candidates, leads[non_space_leads]))
    special_flags = np.concatenate((ascii_candidate_flags, lead_flags[non_space_leads]))
    return _token_table(
        data,
        size,
        classes.digit,
        chunk_row[token_chunk],
        token_start,
        token_end,
        special_pos,
        special_flags,
        continuation,
    )


_SPECIAL_HASHES: np.ndarray | None = None


def _is_member(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """``np.isin`` for a small sorted set: a 16-bit bucket table rules out almost every
    value, binary search confirms the rest."""
    buckets = np.zeros(1 << 16, dtype=bool)
    buckets[sorted_set & 0xFFFF] = True
    out = buckets[values & 0xFFFF]
    maybe = np.flatnonzero(out)
    if maybe.size:
        where = np.minimum(np.searchsorted(sorted_set, values[maybe]), sorted_set.size - 1)
        out[maybe] = sorted_set[where] == values[maybe]
    return out


def _byte_set(chars: bytes) -> np.ndarray:
    table = np.zeros(256, dtype=bool)
    table[np.frombuffer(chars, np.uint8)] = True
    return table


def _merge_special_tokens(
    data: np.ndarray, token_start: np.ndarray, token_chunk: np.ndarray, chunk_ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Merge 2-3 adjacent tokens of one chunk that spell a spaCy special case ("):", "e.g.")."""
    global _SPECIAL_HASHES
    if _SPECIAL_HASHES is None:
        _SPECIAL_HASHES = np.sort([token_hash(s) for s in SPECIAL_TOKENS]).astype(np.int64)
    n = token_start.size
    if n < 2:
        return token_start, token_chunk
    following = np.r_[token_start[1:], np.iinfo(np.int64).max]
    length = np.minimum(following, chunk_ends[token_chunk]) - token_start
    for width in (2, 3):
        n = token_start.size
        if n < width:
            break
        same = token_chunk[1:] == token_chunk[:-1]  # token k+1 continues token k's chunk
        total = length[: n - width + 1].copy()
        ok = same[: n - width + 1].copy()
        for k in range(1, width):
            total += length[k : n - width + 1 + k]
            if k < width - 1:
                ok &= same[k : n - width + 1 + k]
        ok &= total <= 10  # every special case is short
        first = np.flatnonzero(ok)
        if first.size == 0:
            continue
        start = token_start[first]
        hit = first[_is_member(_hash_spans(data, start, start + total[first]), _SPECIAL_HASHES)]
        if hit.size == 0:
            continue
        keep = np.ones(n, dtype=bool)
        for offset in range(1, width):
            keep[hit + offset] = False
        length[hit] = total[hit]
        token_start, token_chunk, length = token_start[keep], token_chunk[keep], length[keep]
    return token_start, token_chunk


def _decode(data: np.ndarray, leads: np.ndarray, lead_len: np.ndarray) -> np.ndarray:
    b0 = data[leads].astype(np.int64)
    b1 = data[leads + 1].astype(np.int64) & 0x3F
    b2 = data[leads + 2].astype(np.int64) & 0x3F
    b3 = data[leads + 3].astype(np.int64) & 0x3F
    two = ((b0 & 0x1F) << 6) | b1
    three = ((b0 & 0x0F) << 12) | (b1 << 6) | b2
    four = ((b0 & 0x07) << 18) | (b1 << 12) | (b2 << 6) | b3
    return np.where(lead_len == 2, two, np.where(lead_len == 3, three, four))


def _url_chunks(b: np.ndarray, chunk_starts: np.ndarray, chunk_ends: np.ndarray) -> np.ndarray:
    url = np.zeros(chunk_starts.size, dtype=bool)
    colons = np.flatnonzero(b[: max(b.size - 2, 0)] == ord(":"))
    hits = colons[(b[colons + 1] == ord("/")) & (b[colons + 2] == ord("/"))]
    url[np.searchsorted(chunk_starts, hits, side="right") - 1] = True
    www = np.flatnonzero(b[: max(b.size - 3, 0)] == ord("w"))
    www = www[(b[www + 1] == ord("w")) & (b[www + 2] == ord("w")) & (b[www + 3] == ord("."))]
    chunk = np.searchsorted(chunk_starts, www, side="right") - 1
    url[chunk[chunk_starts[chunk] == www]] = True
    return url


def _contraction_starts(b, positions, flags, prev_flags, nxt, chunk_end, size) -> list[np.ndarray]:
    """Token starts for "n't" (at the n) and "'s" "'re" "'ll" "'ve" "'m" "'d" (at the ')."""
    apostrophe = (b[positions] == ord("'")) | (
        (b[positions] == 0xE2)
        & (b[np.minimum(positions + 1, size - 1)] == 0x80)
        & (b[np.minimum(positions + 2, size - 1)] == 0x99)
    )
    apostrophe &= (prev_flags & ALPHA).astype(bool)
    ap, after = positions[apostrophe], nxt[apostrophe]
    ends = chunk_end[apostrophe]
    lower = b[np.minimum(after, size - 1)] | 0x20
    second = b[np.minimum(after + 1, size - 1)] | 0x20
    one_letter = (after + 1 <= ends) & _byte_set(b"smdt")[lower]
    one_letter &= (after + 1 == ends) | ~_is_alnum(b[np.minimum(after + 1, size - 1)])
    two_letters = (after + 2 <= ends) & (
        ((lower == ord("r")) & (second == ord("e")))
        | ((lower == ord("l")) & (second == ord("l")))
        | ((lower == ord("v")) & (second == ord("e")))
    )
    two_letters &= (after + 2 == ends) | ~_is_alnum(b[np.minimum(after + 2, size - 1)])
    nt = one_letter & (lower == ord("t")) & ((b[np.maximum(ap - 1, 0)] | 0x20) == ord("n"))
    clitic = (one_letter & (lower != ord("t"))) | two_letters
    return [ap[clitic], ap[nt] - 1]


def _is_alnum(values: np.ndarray) -> np.ndarray:
    low = values | 0x20
    return ((low >= ord("a")) & (low <= ord("z"))) | ((values >= ord("0")) & (values <= ord("9")))


def _token_table(
    data: np.ndarray,
    size: int,
    digit: np.ndarray,
    row: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    special_pos: np.ndarray,
    special_flags: np.ndarray,
    continuation: np.ndarray,
) -> Tokens:
    """Per-token attributes. Characters other than ASCII letters and digits ("special":
    punctuation, symbols, non-ASCII) are few, so each is assigned to its token and counted
    with bincount instead of scanning every byte per token."""
    n = start.size

    def owner(positions: np.ndarray) -> np.ndarray:
        """Token index of each position (positions are inside tokens)."""
        return np.searchsorted(start, positions, side="right") - 1

    cont_pos = np.flatnonzero(continuation)
    cont_owner = owner(cont_pos)
    inside = (cont_owner >= 0) & (cont_pos < end[np.maximum(cont_owner, 0)])
    n_chars = (end - start) - np.bincount(cont_owner[inside], minlength=n)[:n]
    special_owner = owner(special_pos)
    special_count = np.bincount(special_owner, minlength=n)[:n]
    ascii_alnum = n_chars - special_count
    digit_pos = np.flatnonzero(digit)
    ascii_letters = ascii_alnum - np.bincount(owner(digit_pos), minlength=n)[:n]

    def count_flag(flag: int, present: bool = True) -> np.ndarray:
        mask = (special_flags & flag).astype(bool)
        return np.bincount(special_owner[mask if present else ~mask], minlength=n)[:n]

    has_alpha = (ascii_letters > 0) | (count_flag(ALPHA) > 0)
    non_symbol = (ascii_alnum > 0) | (count_flag(SYMBOL_SET, present=False) > 0)
    is_punct = (ascii_alnum == 0) & (count_flag(UNICODE_PUNCT, present=False) == 0)
    is_sentence_end = (n_chars == 1) & (count_flag(SENTENCE_END) == 1)
    return Tokens(
        row=row,
        start=start,
        end=end,
        hash=_hash_spans(data, start, end),
        n_chars=n_chars.astype(np.int64),
        has_alpha=has_alpha,
        non_symbol=non_symbol,
        is_sentence_end=is_sentence_end,
        is_punct=is_punct,
        data=data,
    )
