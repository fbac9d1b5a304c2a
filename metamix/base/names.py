"""Data and config values as file names: the one mapping every writer uses.

A domain, source or run name comes from the user's data or config; joined into a path as
it is, ``../../x`` writes outside the run folder, ``a/b`` makes folders, 300 characters
exceed the file system's 255-byte limit and ``..`` or ``CON`` name something else.
``file_name`` maps any string to one path component:

* a name that is already safe and short (``web``, ``code-v2``, ``books.en``) is itself,
  so ordinary outputs keep their names;
* anything else becomes ``<slug>~<hash>``: the readable part of the value (at most
  ``MAX_NAME`` characters in all) and 16 hex digits of its SHA-256. Safe names never
  contain ``~``, so a mapped name cannot equal a safe one, and two values share a mapped
  name only if their hashes collide (64 bits).
"""

from __future__ import annotations

import hashlib
import re

#: The longest name ``file_name`` returns: room for prefixes and suffixes
#: (``expert-<name>-<key>.npy``, ``.<name>_text_document.bin.tmp-<pid>``) under 255 bytes.
MAX_NAME = 96
SAFE_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9_.-]*"
_SAFE = re.compile(SAFE_PATTERN)
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9_.-]+")
_HASH_CHARS = 16
#: Names Windows (and so a share or a copy onto one) gives another meaning, with or
#: without an extension.
_RESERVED = frozenset({"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)),
                       *(f"lpt{i}" for i in range(10))})


def is_safe_name(value: str) -> bool:
    """Whether ``value`` is a file name as it is: ASCII letters, digits and ``_.-``, not
    starting with ``.`` or ``-``, not ending with ``.``, at most ``MAX_NAME`` characters,
    not a reserved device name."""
    return (len(value) <= MAX_NAME and _SAFE.fullmatch(value) is not None
            and not value.endswith(".") and value.split(".", 1)[0].lower() not in _RESERVED)


def file_name(value: str) -> str:
    """``value`` as one safe path component (the identity for safe names, see above)."""
    if is_safe_name(value):
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_CHARS]
    slug = _UNSAFE_RUN.sub("-", value).strip(".-")[:MAX_NAME - _HASH_CHARS - 1].rstrip(".-")
    return f"{slug or '_'}~{digest}"
