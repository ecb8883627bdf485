"""The Standard Webhooks signature (https://www.standardwebhooks.com/): HMAC-SHA256 of
`{webhook-id}.{webhook-timestamp}.{body}` under each of the endpoint's secrets, `v1,<base64>`,
space-separated (a rotated endpoint's previous secret signs too, during its grace period)."""

from __future__ import annotations

import base64
import os
from datetime import datetime, timezone

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(os.urandom(SECRET_BYTES)).decode()


def headers(msg_id: str, timestamp: int, body: str, secrets: tuple[str, ...]) -> dict[str, str]:
    at = datetime.fromtimestamp(timestamp, timezone.utc)
    signatures = " ".join(Webhook(secret).sign(msg_id, at, body) for secret in secrets)
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": signatures, "content-type": "application/json"}
