"""What may be written down about a request that got no usable answer: the error's type and what went wrong,
with the endpoint named by its Airflow connection id, never its URL.

An endpoint's URL may carry a secret anywhere: user-info, the query, or the path itself (Slack and Teams
incoming webhooks are ``https://hooks.slack.com/services/T…/B…/<secret>``). The network libraries quote the URL,
or its host and path, in their errors, so the text of such an error (``str(error)``) is never recorded: every
failure written to ``last_error``, an attempt row, a log line or a task's exception is ``describe_failure``.
"""

from __future__ import annotations

# By the name of the error's class or of the nearest base class listed (aiohttp's, requests' and Python's own
# errors; matching names keeps this module free of both clients): what went wrong, before "the endpoint ...".
_WHAT_WENT_WRONG = {
    "ConnectTimeout": "cannot connect within the timeout to",
    "ConnectionTimeoutError": "cannot connect within the timeout to",
    "ServerTimeoutError": "no answer within the timeout from",
    "Timeout": "no answer within the timeout from",
    "TimeoutError": "no answer within the timeout from",
    "ClientConnectorError": "cannot connect to",
    "ConnectionRefusedError": "cannot connect to",
    "ServerDisconnectedError": "connection closed without a whole answer by",
    "ConnectionResetError": "connection reset by",
    "ClientResponseError": "no valid HTTP answer from",
    "ClientPayloadError": "a broken reply body from",
    "ChunkedEncodingError": "a broken reply body from",
    "InvalidURL": "no usable URL for",
    "NonHttpUrlClientError": "no http(s) URL for",
    "InvalidSchema": "no http(s) URL for",
    "MissingSchema": "no usable URL for",
    "ClientOSError": "connection failed to",
    "ConnectionError": "connection failed to",
}
_ANYTHING_ELSE = "no answer from"


def endpoint_of(conn_id: str | None) -> str:
    """How a log line or an error names an endpoint: by its connection id."""
    return f"the endpoint of connection {conn_id}" if conn_id else "the endpoint"


def describe_failure(error: BaseException, conn_id: str | None) -> str:
    """``error`` as ``Type: what went wrong the endpoint of connection <conn_id>``; none of its own text."""
    what = next((_WHAT_WENT_WRONG[cls.__name__] for cls in type(error).__mro__ if cls.__name__ in _WHAT_WENT_WRONG),
                _ANYTHING_ELSE)
    return f"{type(error).__name__}: {what} {endpoint_of(conn_id)}"
