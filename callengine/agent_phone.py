"""An agent pauses or resumes from their phone: the feature code in the agents' dialplan
context (dialplan/extensions_callengine.conf, *45) hands the channel over as
`Stasis(callengine,agent-pause,${CHANNEL(endpoint)})`; this handler (the inbound purpose
"agent-pause", callengine.inbound) flips that agent's pause, says which way it went and hangs up.

Only a known, enabled agent's own endpoint can pause itself (Configuration.pause_from_phone
checks the channel is on the endpoint the dialplan named); anything else hears an error sound
and nothing changes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from callengine.inbound import InboundChannel
from callengine.model import Agent

log = logging.getLogger(__name__)

PURPOSE = "agent-pause"
# Asterisk's core sounds (asterisk-core-sounds-en): "agent logged off" / "agent login ok".
PAUSED_SOUND = "sound:agent-loggedoff"
RESUMED_SOUND = "sound:agent-loginok"
REFUSED_SOUND = "sound:beeperr"

# Configuration.pause_from_phone: (endpoint, channel name) → the agent as changed, or None.
PauseFromPhone = Callable[[str, str], Awaitable[Agent | None]]


def pause_handler(pause_from_phone: PauseFromPhone
                  ) -> Callable[[InboundChannel], Awaitable[None]]:
    """The "agent-pause" handler."""

    async def handle(channel: InboundChannel) -> None:
        endpoint = f"PJSIP/{channel.args[0]}" if channel.args and channel.args[0] else ""
        agent = await pause_from_phone(endpoint, channel.name) if endpoint else None
        await channel.telephony.answer_channel(channel.channel_id)
        if agent is None:
            log.warning("%s pause asked from %s: no enabled agent has that endpoint",
                        channel.log_prefix, channel.name or "an unnamed channel")
            await channel.play(REFUSED_SOUND)
            return
        log.info("%s agent %s %s from the phone", channel.log_prefix, agent.name,
                 "paused" if agent.paused else "resumed")
        await channel.play(PAUSED_SOUND if agent.paused else RESUMED_SOUND)

    return handle


__all__ = ["PURPOSE", "pause_handler"]
