"""What counts as a blank character: the one definition Python and the planning SQL share.

A character is blank when it shows nothing a reader could take for a name: whitespace (``str.isspace``), a
separator, control or format character (Unicode categories Zs, Zl, Zp, Cc, Cf), a default-ignorable code
point (Unicode's ``Default_Ignorable_Code_Point`` property: the Hangul fillers, variation selectors, the
combining grapheme joiner, ...), or U+2800 BRAILLE PATTERN BLANK. Planning passes ``BLANK_CHARACTERS`` to
PostgreSQL's ``btrim`` as a bound parameter and Python strips the same string, so both agree by construction.
"""

from __future__ import annotations

import functools
import unicodedata

_BLANK_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf"})
# The assigned code points of Default_Ignorable_Code_Point that are not Cf (those are in a category above),
# from Unicode's DerivedCoreProperties.txt; ``unicodedata`` does not expose that property.
_DEFAULT_IGNORABLE_RANGES = (
    (0x034F, 0x034F),  # COMBINING GRAPHEME JOINER
    (0x115F, 0x1160),  # HANGUL CHOSEONG FILLER, HANGUL JUNGSEONG FILLER
    (0x17B4, 0x17B5),  # KHMER VOWEL INHERENT AQ, AA
    (0x180B, 0x180F),  # MONGOLIAN FREE VARIATION SELECTORS, VOWEL SEPARATOR
    (0x3164, 0x3164),  # HANGUL FILLER
    (0xFE00, 0xFE0F),  # VARIATION SELECTOR-1..16
    (0xFFA0, 0xFFA0),  # HALFWIDTH HANGUL FILLER
    (0xE0100, 0xE01EF),  # VARIATION SELECTOR-17..256
)
_BRAILLE_PATTERN_BLANK = 0x2800
# The planes that hold characters of those categories: the Basic and the Supplementary Multilingual Plane and
# the Supplementary Special-purpose Plane (tags, variation selectors). Planes 2-13 hold ideographs or nothing,
# 15-16 private use; tests/unit/test_blanks.py checks every code point against this list.
BLANK_PLANES = (0, 1, 14)


@functools.cache
def blank_characters() -> str:
    """Every blank character but U+0000, which PostgreSQL text cannot hold (so no stored name has it).

    Built once per process (about 30 ms), on first use rather than at import, so that parsing a DAG file that
    imports the occasions does not pay for it.
    """
    by_category = {
        code for plane in BLANK_PLANES for code in range(max(1, plane << 16), (plane + 1) << 16)
        if chr(code).isspace() or unicodedata.category(chr(code)) in _BLANK_CATEGORIES
    }
    ignorable = {code for first, last in _DEFAULT_IGNORABLE_RANGES for code in range(first, last + 1)}
    return "".join(map(chr, sorted(by_category | ignorable | {_BRAILLE_PATTERN_BLANK})))


def strip_blanks(text: str) -> str:
    """``text`` without the blank characters at either end (``btrim(text, blank_characters())`` in SQL)."""
    return text.strip(blank_characters())
