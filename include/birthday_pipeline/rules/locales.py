"""Language tags (BCP 47, such as ``de``, ``pt-BR``, ``zh-Hant``) and the fallback chain a message is looked up by.

Tags are compared case-insensitively with ``_`` read as ``-`` (``pt_br`` is ``pt-BR``), as RFC 5646 says tags
compare. A user's tag is looked up as written, then with its last subtag dropped, and so on (``zh-Hant-TW`` →
``zh-Hant`` → ``zh``), then the default text: the lookup of RFC 4647 section 3.4. A value in the users relation
that is no tag at all (blank, too long, stray characters) finds no text and gets the default: a bad locale is
that user's default message, never anyone else's problem.
"""

from __future__ import annotations

import re

# The shape of a tag (RFC 5646 section 2.1, without the grandfathered forms): a 2-8 letter primary subtag, then
# subtags of 1-8 letters or digits. Only settings are held to it; a user's value that is not one falls back.
_TAG = re.compile(r"[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*")
# The longest tag a users relation value is read as (RFC 5646 section 4.4.1 advises supporting 35 characters).
MAX_TAG_LENGTH = 35


def tag_key(tag: str) -> str:
    """A settings tag as the lookup compares it (``pt-BR`` → ``pt-br``); ValueError if it is no language tag."""
    folded = tag.strip().replace("_", "-")
    if not _TAG.fullmatch(folded):
        raise ValueError(f"{tag!r} is not a language tag such as de, pt-BR or zh-Hant")
    return folded.lower()


def fallback_keys(value: str | None) -> list[str]:
    """The tag keys a user's locale value is looked up by, most specific first; empty when it is no tag."""
    if value is None or len(value) > MAX_TAG_LENGTH:
        return []
    folded = value.strip().replace("_", "-")
    if not _TAG.fullmatch(folded):
        return []
    subtags = folded.lower().split("-")
    return ["-".join(subtags[:length]) for length in range(len(subtags), 0, -1)]
