"""URLs in text bound for logs and the database lose their user-info and query string."""

from __future__ import annotations

import pytest

from birthday_pipeline.redaction import redact_urls


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ("Cannot connect to host https://hook:s3cret@hooks.example.com:8443/birthdays?token=abc#x ssl:default",
         "Cannot connect to host https://hooks.example.com:8443/birthdays ssl:default"),
        ("InvalidURL: URL('http://user@[::1]:8080/path?key=1')", "InvalidURL: URL('http://[::1]:8080/path')"),
        ("two: http://a:b@one.example/x?q=1 and (https://two.example/y?q=2)",
         "two: http://one.example/x and (https://two.example/y)"),
        ("InvalidURL http://[::1", "InvalidURL http://[redacted]"),
        ("HTTP 500", "HTTP 500"),
    ],
)
def test_urls_lose_credentials_and_query_strings(text: str, redacted: str) -> None:
    assert redact_urls(text) == redacted
