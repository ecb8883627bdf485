"""ARI's event JSON → the Telephony port's events (parse_event); everything else the engine
does not need maps to None. Tested against events recorded from a real Asterisk
(tests/asterisk/fixtures/)."""

from __future__ import annotations

from typing import Any

from callengine.telephony import (
    AsteriskShuttingDown,
    ChannelDestroyed,
    ChannelEnteredApp,
    ChannelRinging,
    DigitPressed,
    EndpointState,
    PlaybackFinished,
    TelephonyEvent,
)

# ChannelHangupRequest with soft=true carries Asterisk's soft-hangup flags, not a Q.850 cause;
# measured: `core restart now` → 4, our own DELETE → 32.
SOFTHANGUP_SHUTDOWN = 0x04


def endpoint_state(endpoint: dict[str, Any]) -> EndpointState:
    """ARI's Endpoint object (GET /endpoints, EndpointStateChange) as the port's."""
    return EndpointState(f"{endpoint.get('technology', '')}/{endpoint.get('resource', '')}",
                         str(endpoint.get("state", "unknown")),
                         tuple(endpoint.get("channel_ids", ())))


def parse_event(data: dict[str, Any]) -> TelephonyEvent | None:
    """Translate one ARI event into ours; None for events the engine does not need."""
    kind = data.get("type")
    if kind == "StasisStart":
        channel = data.get("channel", {})
        return ChannelEnteredApp(
            channel.get("id", ""), tuple(data.get("args", [])), channel.get("name", "")
        )
    if kind == "ChannelDestroyed":
        channel = data.get("channel", {})
        return ChannelDestroyed(
            channel.get("id", ""), int(data.get("cause", 0)), data.get("cause_txt", "")
        )
    if kind == "ChannelHangupRequest" and data.get("soft"):
        if int(data.get("cause", 0)) & SOFTHANGUP_SHUTDOWN:
            return AsteriskShuttingDown(data.get("channel", {}).get("id", ""))
        return None
    if kind == "Dial" and data.get("dialstatus") == "RINGING":
        return ChannelRinging(data.get("peer", {}).get("id", ""))
    if kind == "ChannelStateChange" and data.get("channel", {}).get("state") == "Ringing":
        return ChannelRinging(data["channel"].get("id", ""))
    if kind == "ChannelDtmfReceived":  # sent once the digit ends, with its duration
        return DigitPressed(data.get("channel", {}).get("id", ""), str(data.get("digit", "")))
    if kind == "EndpointStateChange":  # measured: sent on a channel's arrival and end too
        return endpoint_state(data.get("endpoint", {}))
    if kind in ("PlaybackFinished", "PlaybackFailed"):  # PlaybackFailed: Asterisk ≥ 21
        playback = data.get("playback", {})
        target = playback.get("target_uri", "")
        channel_id = target.split(":", 1)[1] if target.startswith("channel:") else None
        return PlaybackFinished(
            playback.get("id", ""),
            channel_id,
            failed=kind == "PlaybackFailed" or playback.get("state") == "failed",
        )
    return None
