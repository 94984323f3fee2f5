"""Credentials out of text bound for logs and the database: URLs lose their user-info and query string.

An endpoint URL may carry a password (``https://user:secret@host/...``) or a token in its query
(``...?key=secret``); an error message from the HTTP client may quote it. Everything the send path writes
down about a failure (``last_error``, attempt errors, log lines) goes through ``redact_urls`` first.
"""

from __future__ import annotations

import re

from yarl import URL

# A scheme, "://" and everything up to whitespace, a quote, an angle bracket or a parenthesis: how URLs
# appear in error messages (square brackets stay: an IPv6 host has them).
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>()]+")


def redact_url(url: str) -> str:
    """``url`` without user-info, query string and fragment; what cannot be parsed keeps only its scheme."""
    try:
        parsed = URL(url)
        return str(parsed.with_user(None).with_query(None).with_fragment(None))
    except (ValueError, TypeError):
        return url.split("://", 1)[0] + "://[redacted]"


def redact_urls(text: str) -> str:
    """``text`` with every URL in it redacted (``redact_url``)."""
    return _URL.sub(lambda match: redact_url(match.group()), text)
