"""What each kind of endpoint accepts, as its service documents it, for the receiver to check every request against.

A shape check returns the problems it finds (empty: the service would take the body). ``accepting`` turns one into
a receiver policy that answers 400, as those services do, to a body of the wrong shape, so a test sees a wrong
shape as a failed notification in the database, not only in an assertion on the request.

- Standard Webhooks (this pipeline's own body): ``message``, ``notification_id``, ``user_id``, ``occasion``,
  ``occasion_date`` and nothing else.
- Slack incoming webhooks (api.slack.com/messaging/webhooks) and Mattermost's: ``text``, a non-empty string, is
  the message when no ``blocks`` are given.
- Discord "Execute Webhook": one of ``content`` (at most 2000 characters), ``embeds``, ``components``, ``file``
  or ``poll``; we send ``content``.
- Microsoft Teams incoming webhooks with Adaptive Cards (learn.microsoft.com, "Create an Incoming Webhook"):
  ``{"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
  "content": {"type": "AdaptiveCard", "version": ..., "body": [...]}}]}``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from tests.webhook_receiver import Answer, ReceivedRequest

DISCORD_CONTENT_LIMIT = 2000
STANDARD_KEYS = ["message", "notification_id", "user_id", "occasion", "occasion_date"]


def standard(body: Any) -> list[str]:
    if not isinstance(body, dict) or list(body) != STANDARD_KEYS:
        return [f"keys are not {STANDARD_KEYS}"]
    problems = [f"{key} is not text" for key in ("message", "occasion", "occasion_date")
                if not isinstance(body[key], str)]
    problems += [f"{key} is not an integer" for key in ("notification_id", "user_id")
                 if not isinstance(body[key], int) or isinstance(body[key], bool)]
    if not problems:
        try:
            date.fromisoformat(body["occasion_date"])
        except ValueError:
            problems.append("occasion_date is not an ISO date")
    return problems


def slack(body: Any) -> list[str]:
    if not isinstance(body, dict) or not isinstance(body.get("text"), str) or not body["text"]:
        return ["no_text: a message needs text"]
    return []


def discord(body: Any) -> list[str]:
    if not isinstance(body, dict) or not any(key in body for key in ("content", "embeds", "components", "file",
                                                                      "poll")):
        return ["Cannot send an empty message"]
    content = body.get("content")
    if content is not None and (not isinstance(content, str) or len(content) > DISCORD_CONTENT_LIMIT):
        return [f"content must be text of at most {DISCORD_CONTENT_LIMIT} characters"]
    return []


def teams(body: Any) -> list[str]:
    if not isinstance(body, dict) or body.get("type") != "message":
        return ["type is not message"]
    attachments = body.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return ["no attachments"]
    problems = []
    for attachment in attachments:
        if attachment.get("contentType") != "application/vnd.microsoft.card.adaptive":
            problems.append("an attachment is not an Adaptive Card")
            continue
        card = attachment.get("content")
        if not isinstance(card, dict) or card.get("type") != "AdaptiveCard" or not isinstance(card.get("version"),
                                                                                               str):
            problems.append("the attachment's content is not an AdaptiveCard with a version")
        elif not isinstance(card.get("body"), list) or not all(
                isinstance(element, dict) and isinstance(element.get("type"), str) for element in card["body"]):
            problems.append("the card's body is not a list of typed elements")
    return problems


SHAPES: dict[str, Callable[[Any], list[str]]] = {"standard": standard, "slack": slack, "discord": discord,
                                                 "teams": teams}


def accepting(shape: Callable[[Any], list[str]]) -> Callable[[ReceivedRequest], Answer]:
    """A receiver policy: 200 to a JSON body of ``shape`` sent as application/json, 400 to anything else."""

    def policy(request: ReceivedRequest) -> Answer:
        if not request.headers.get("content-type", "").startswith("application/json") or request.json is None:
            return Answer(400)
        return Answer(400 if shape(request.json) else 200)

    return policy
