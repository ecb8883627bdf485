"""Webhooks for CRMs (docs/webhooks.md): the events and their payloads (events.py, pure), the
Standard Webhooks signature (signing.py) and the delivery worker that posts the outbox's
deliveries (delivery.py, aiohttp's client). Nothing imported here: the store imports only
events.py."""
