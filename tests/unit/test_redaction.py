"""A failed request is described by the error's type and the endpoint's connection id, never the error's text."""

from __future__ import annotations


import aiohttp
import pytest
import requests

from birthday_pipeline.deliver.redaction import describe_failure

SECRET_URL = "https://hook:s3cret@hooks.slack.com/services/T000/B000/s3cret?token=s3cret"


def connector_error() -> aiohttp.ClientConnectorError:
    key = aiohttp.client_reqrep.ConnectionKey("hooks.slack.com", 443, True, True, None, None, None)
    return aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, f"refused {SECRET_URL}"))


@pytest.mark.parametrize(
    ("error", "described"),
    [
        (connector_error(), "ClientConnectorError: cannot connect to the endpoint of connection birthday_webhook"),
        (TimeoutError(), "TimeoutError: no answer within the timeout from the endpoint of connection"
                                 " birthday_webhook"),
        (aiohttp.ServerDisconnectedError(), "ServerDisconnectedError: connection closed without a whole answer by"
                                            " the endpoint of connection birthday_webhook"),
        (aiohttp.NonHttpUrlClientError(SECRET_URL), "NonHttpUrlClientError: no http(s) URL for the endpoint of"
                                                    " connection birthday_webhook"),
        (requests.ConnectionError(f"Max retries exceeded with url: {SECRET_URL}"),
         "ConnectionError: connection failed to the endpoint of connection birthday_webhook"),
        (requests.ReadTimeout(SECRET_URL), "ReadTimeout: no answer within the timeout from the endpoint of connection"
                                           " birthday_webhook"),
        (ValueError(SECRET_URL), "ValueError: no answer from the endpoint of connection birthday_webhook"),
    ],
)
def test_a_failure_is_its_type_and_the_connection_never_its_text(error: BaseException, described: str) -> None:
    assert describe_failure(error, "birthday_webhook") == described
    assert "s3cret" not in described


def test_without_a_connection_id_the_endpoint_is_named_by_nothing_else() -> None:
    assert describe_failure(ConnectionResetError(SECRET_URL), None) == "ConnectionResetError: connection reset by" \
        " the endpoint"
