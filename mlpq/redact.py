"""What of a user's input may be shown: values cut to ~100 characters, passwords in URLs masked.

Every error message and log line that quotes a user's value goes through here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

SHOWN_CHARS = 100
"""No message quotes more than this many characters of one value."""
MASK = "***"

_SPACE = re.compile(r"\s")
_QUERY_SECRET = re.compile(r"(?P<key>[?&;](?:password|passwd|pwd)=)[^&;#\s]*", re.IGNORECASE)
_LONG_RUN = re.compile(r"\S{%d,}" % (SHOWN_CHARS + 3))
"""Longer than a value ``cut`` has already shortened (its quotes and ``…`` included)."""


def cut(text: str, limit: int = SHOWN_CHARS) -> str:
    """``text`` itself, or its first ``limit`` characters and how many more there were."""
    return text if len(text) <= limit else f"{text[:limit]}… (+{len(text) - limit} chars)"


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
    """``text`` safe to print: URLs masked, every known password replaced, every long word cut."""
    text = mask_url(text)
    for password in sorted(passwords, key=len, reverse=True):
        text = text.replace(password, MASK)
    return _LONG_RUN.sub(lambda m: cut(m[0]), text)
