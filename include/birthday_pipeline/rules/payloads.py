"""The JSON body each kind of endpoint expects: the presets and a team's own JSON template.

- ``standard`` (the default): the Standard Webhooks body ``{"message", "notification_id", "user_id",
  "occasion", "occasion_date"}``;
- ``slack``: a Slack or Mattermost incoming webhook's ``{"text": ...}``;
- ``discord``: a Discord webhook's ``{"content": ...}``;
- ``teams``: a Microsoft Teams incoming webhook (Workflows) message carrying one Adaptive Card whose text block
  is the message, the shape of Microsoft's "Send Adaptive Cards using an Incoming Webhook";
- a custom JSON template: any JSON object whose string values may hold the placeholders of ``PLACEHOLDERS``.

Every body is compact UTF-8 JSON; the Standard Webhooks headers (``webhook-id``, ``webhook-timestamp``,
``webhook-signature``) go with it whatever its shape (``webhooks.request_headers``).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any

from birthday_pipeline.rules.templates import JsonTemplate, compact_json

# What a custom payload may insert, besides the message's own placeholders: the rendered message and the ids.
PAYLOAD_PLACEHOLDERS = frozenset({"message", "notification_id", "user_id", "webhook_id"})

ADAPTIVE_CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"


class Preset(enum.StrEnum):
    STANDARD = "standard"
    SLACK = "slack"
    DISCORD = "discord"
    TEAMS = "teams"


@dataclasses.dataclass(frozen=True)
class Payload:
    """One body shape: a preset, or (``preset`` None) a custom JSON template."""

    preset: Preset | None = Preset.STANDARD
    template: JsonTemplate | None = None

    def body(self, values: Mapping[str, str], notification_id: int, user_id: int) -> bytes:
        """The request body for one notification; ``values`` are the placeholders' texts, ``message`` included."""
        return compact_json(self.shape(values, notification_id, user_id))

    def shape(self, values: Mapping[str, str], notification_id: int, user_id: int) -> Any:
        message = values["message"]
        if self.preset is Preset.STANDARD:
            # The order and the integer ids are the body's as it has always been: receivers may compare bytes.
            return {"message": message, "notification_id": notification_id, "user_id": user_id,
                    "occasion": values["occasion"], "occasion_date": values["occasion_date"]}
        if self.preset is Preset.SLACK:
            return {"text": message}
        if self.preset is Preset.DISCORD:
            return {"content": message}
        if self.preset is Preset.TEAMS:
            return {"type": "message", "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {"$schema": ADAPTIVE_CARD_SCHEMA, "type": "AdaptiveCard", "version": "1.2",
                            "body": [{"type": "TextBlock", "text": message, "wrap": True}]},
            }]}
        if self.template is None:
            raise ValueError("a custom payload needs a template")
        return self.template.render(values)

    def as_json(self) -> Any:
        """This payload as its setting is written: the preset's name, or ``{"custom": <template>}``."""
        if self.preset is not None:
            return self.preset.value
        return {"custom": self.template.as_json() if self.template else None}
