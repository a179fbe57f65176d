"""What may be shown: control characters escaped, text on one line and cut, by the one helper every module uses."""

from __future__ import annotations

import pytest

from mlpq.redact import SHOWN_CHARS, one_line, printable, scrub


@pytest.mark.parametrize(("text", "shown"), [
    ("\x1b]0;owned\x07", "\\x1b]0;owned\\x07"),  # a terminal title
    ("\x1b[2J\x1b[H", "\\x1b[2J\\x1b[H"),  # clear the screen, cursor home
    ("\x9b31m", "\\x9b31m"),  # the 8-bit CSI
    ("a\rb\nc\td\x00\x7f", "a\\rb\\nc\\td\\x00\\x7f"),
    ("evil\u202etxt.exe\u2066\u200b", "evil\\u202etxt.exe\\u2066\\u200b"),  # bidi overrides, zero width
    ("line\u2028para\u2029", "line\\u2028para\\u2029"),
    ("\udcff", "\\udcff"),  # a lone surrogate (undecodable bytes)
])
def test_control_characters_are_escaped(text: str, shown: str) -> None:
    assert printable(text) == shown


def test_printable_text_is_left_as_it_is() -> None:
    text = "Adam: lr=0.001, f=1e-09 à (3, 2) — 91.2% 東京 🙂 \\x1b"
    assert printable(text) is text


def test_one_line_joins_whitespace_escapes_and_cuts() -> None:
    assert one_line("a\n  b\t\tc\x1b[2J") == "a b c\\x1b[2J"
    assert one_line("x" * 500, 50) == "x" * 50 + "… (+450 chars)"
    assert one_line("x" * 500, None) == "x" * 500
    assert len(one_line("y" * 500)) < SHOWN_CHARS + 20


def test_one_line_of_an_exception_is_its_message_or_its_type() -> None:
    assert one_line(OSError("disk\nfull")) == "disk full"
    assert one_line(TimeoutError()) == "TimeoutError"


def test_an_error_message_is_printed_escaped_and_masked() -> None:
    assert scrub("redis://:pw@host \x1b]0;x\x07", ["pw"]) == "redis://:***@host \\x1b]0;x\\x07"
