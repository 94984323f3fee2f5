"""One definition of a blank character, for Python and SQL alike."""

from __future__ import annotations

import unicodedata

from birthday_pipeline.rules.blanks import BLANK_PLANES, blank_characters, strip_blanks


def test_no_plane_left_out_of_the_scan_holds_a_blank_character() -> None:
    outside = [code for code in range(0x110000) if code >> 16 not in BLANK_PLANES and not 0xD800 <= code <= 0xDFFF
               and (chr(code).isspace() or unicodedata.category(chr(code)) in {"Zs", "Zl", "Zp", "Cc", "Cf"})]
    assert outside == []


def test_blank_characters_are_whitespace_separators_controls_formats_and_invisible_letters() -> None:
    blanks = set(blank_characters())
    assert {" ", "\t", "\n", "\u00a0", "\u2007", "\u202f", "\u3000", "\u2028", "\u2029", "\u0085", "\u200b",
            "\u200d", "\u2060", "\ufeff", "\u00ad", "\u180e", "\u3164", "\u115f", "\u1160", "\uffa0", "\u2800",
            "\ufe0f", "\U000e0020", "\U000e0100", "\x7f", "\x1f"} <= blanks
    assert "\x00" not in blanks  # PostgreSQL text cannot hold it, and it cannot be a bound parameter
    assert not blanks & set("aZ09-_.'\"é中ا😀")


def test_strip_blanks_trims_both_ends_only() -> None:
    assert strip_blanks("\u3000Zoë\u200b O'Brien\u00a0\ufeff") == "Zoë\u200b O'Brien"
    assert strip_blanks("\u3164\u2800\u115f") == ""
