"""What the widget on a page needs to know of its widget (public: no personal data, nothing
secret): language and texts, look, which fields it asks, challenge and recording on/off, the
number rules to show, and the paths of the routes it calls."""

from __future__ import annotations

from typing import Any

from callengine.model import Widget
from callengine.services.widget_texts import BUILT_IN, choose_language, texts_for


def public_config(widget: Widget, lang: str | None) -> dict[str, Any]:
    s = widget.settings
    language = choose_language(lang, set(BUILT_IN) | set(s.texts))
    base = f"/api/v1/widgets/{widget.public_key}"
    return {
        "enabled": widget.enabled,  # disabled: the widget shows nothing, takes no leads
        "language": language,
        "texts": texts_for(language, s.texts),
        "colour": s.colour,
        "position": s.position,
        "ask_name": s.ask_name,
        "ask_email": s.ask_email,
        "countdown_s": s.countdown_s,
        "open_after_s": s.open_after_s,
        "exit_intent": s.exit_intent,
        "challenge": s.challenge,
        "recording": s.recording,
        "default_region": s.default_region,
        "allowed_regions": list(s.allowed_regions),
        "slots": s.slot_capacity > 0,
        "endpoints": {
            "clause": f"{base}/clause",
            "hours": f"{base}/hours",
            "challenge": f"{base}/challenge",
            "leads": f"{base}/leads",
        },
    }
