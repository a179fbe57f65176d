"""What of a user's input may be shown: values cut to ~100 characters, passwords in URLs masked, control
characters escaped.

Every error message and log line that quotes a user's value goes through here, and
every human-readable output of stored or received text (a job's error, parameters
or result, a worker's name, a dead letter) through ``printable`` or ``one_line``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

SHOWN_CHARS = 100
"""No message quotes more than this many characters of one value."""
MASK = "***"

_SPACE = re.compile(r"\s")
_QUERY_SECRET = re.compile(r"(?P<key>[?&;](?:password|passwd|pwd)=)[^&;#\s]*", re.IGNORECASE)
_LONG_RUN = re.compile(r"\S{%d,}" % (SHOWN_CHARS + 3))
"""Longer than a value ``cut`` has already shortened (its quotes and ``…`` included)."""
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
"""Unicode's control, format (bidi overrides, zero-width), surrogate and line/paragraph separator categories."""


def cut(text: str, limit: int = SHOWN_CHARS) -> str:
    """``text`` itself, or its first ``limit`` characters and how many more there were."""
    return text if len(text) <= limit else f"{text[:limit]}… (+{len(text) - limit} chars)"


def printable(text: str) -> str:
    """``text`` with each control character written as its Python escape (``\\x1b``, ``\\n``, ``\\u202e``).

    Stored or received text is anyone's who can write to the ledger or to Redis:
    printed raw, its escape sequences would drive the operator's terminal (set its
    title, rewrite lines) and its bidi overrides reorder what is shown.
    """
    if text.isprintable():
        return text
    return "".join(ascii(char)[1:-1] if unicodedata.category(char) in _UNPRINTABLE else char for char in text)


def one_line(text: object, limit: int | None = SHOWN_CHARS) -> str:
    """``text`` (an exception: its message, or its type's name when it has none) as one printable line,
    whitespace runs as one space, cut to ``limit`` characters (``None``: not cut)."""
    if isinstance(text, BaseException):
        text = str(text) or type(text).__name__
    line = printable(" ".join(str(text).split()))
    return line if limit is None else cut(line, limit)


def shown(value: object) -> str:
    """A user's value for an error message: its repr, cut to ~100 characters, passwords masked."""
    return cut(repr(mask_url(value) if isinstance(value, str) else value))


def _userinfo_spans(text: str) -> list[tuple[int, int]]:
    """Where the passwords of ``scheme://user:password@`` sit in ``text``, in one linear pass.

    A URL runs from ``://`` to the next whitespace; its user info ends at its last
    ``@``, so a password holding ``@`` or ``/`` is covered whole.
    """
    spans, pos = [], 0
    while (found := text.find("://", pos)) != -1:
        start = found + 3
        space = _SPACE.search(text, start)
        end = space.start() if space else len(text)
        at = text.rfind("@", start, end)
        colon = text.find(":", start, at) if at != -1 else -1
        if colon != -1 and colon + 1 < at:
            spans.append((colon + 1, at))
        pos = end
    return spans


def mask_url(url: str) -> str:
    """``url`` (or any text) with the password of each URL's user info and each ``password=`` value as ``***``.

    Works on malformed URLs too, where SQLAlchemy's ``hide_password`` cannot parse
    and kombu's ``maybe_sanitize_url`` returns the URL unchanged.
    """
    pieces, last = [], 0
    for start, end in _userinfo_spans(url):
        pieces += [url[last:start], MASK]
        last = end
    masked = "".join([*pieces, url[last:]])
    return _QUERY_SECRET.sub(lambda m: f"{m['key']}{MASK}", masked)


def url_passwords(urls: Iterable[str | None]) -> set[str]:
    """The passwords that ``urls`` carry (user info or ``password=``), to be scrubbed from any text."""
    found = set()
    for url in filter(None, urls):
        found.update(url[start:end] for start, end in _userinfo_spans(url))
        found.update(value for m in _QUERY_SECRET.finditer(url) if (value := m[0].partition("=")[2]))
    return found


def scrub(text: str, passwords: Iterable[str] = ()) -> str:
    """``text`` safe to print: URLs masked, every known password replaced, every long word cut, control
    characters escaped."""
    text = mask_url(text)
    for password in sorted(passwords, key=len, reverse=True):
        text = text.replace(password, MASK)
    return printable(_LONG_RUN.sub(lambda m: cut(m[0]), text))
