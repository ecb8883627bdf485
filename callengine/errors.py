"""Domain errors: what went wrong, in the domain's words. They carry no HTTP status and no exit
code; each edge (the HTTP API, the CLI) maps them to its own answer."""

from __future__ import annotations


class InvalidInput(ValueError):
    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


class ClauseUnknown(InvalidInput):
    """A lead names a clause version the widget has no record of (while it has some)."""

    def __init__(self, version: str, language: str):
        super().__init__("clause_version",
                         f"the widget has no information clause {version!r} for {language!r}")


class NotFound(LookupError):
    def __init__(self, what: str, key: str):
        super().__init__(f"no {what} {key!r}")
        self.what = what
        self.key = key


class Conflict(ValueError):
    pass


class WidgetInUse(Conflict):
    """A widget that took leads is not removed: they (and the tombstones of those purged) are
    called, reported and evidenced by it. Disabling it stops new ones."""

    def __init__(self, widget_id: str, leads: int, tombstones: int):
        if leads:
            reason = (f"widget {widget_id!r} has {leads} lead{'s' if leads != 1 else ''}:"
                      " disable it instead (a widget that took leads stays, with their"
                      " tombstones once retention purges them, for its reports)")
        else:
            reason = (f"widget {widget_id!r} has the tombstones of {tombstones} purged"
                      " lead(s), kept for its reports: disable it instead")
        super().__init__(reason)
        self.leads = leads
        self.tombstones = tombstones


class WidgetDisabled(Exception):
    """A new lead for a disabled widget (its accepted leads are still called)."""

    def __init__(self) -> None:
        super().__init__("this widget is disabled: it takes no callback requests now")


class RateLimited(Exception):
    """limit: which one refused ("number", "client" or "widget"); retry_after_s: when its
    window lets the next one through."""

    def __init__(self, message: str, retry_after_s: int, limit: str = "widget"):
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.limit = limit


class SlotInvalid(InvalidInput):
    """A slot that is not one of those the widget offers now."""

    def __init__(self) -> None:
        super().__init__("slot", "is not one of the slots offered now (GET …/hours)")


class SlotFull(Conflict):
    """The callback slot a visitor picked has no place left."""

    def __init__(self) -> None:
        super().__init__("this slot is full: pick another")


class Closed(Conflict):
    """The widget's calling hours never open (within the next year): no lead can be queued."""

    def __init__(self) -> None:
        super().__init__("this widget takes no callbacks: its calling hours never open")


class ErasureIncomplete(Exception):
    """An erasure, a shred or a purge could not remove every copy of the data (another
    connection kept SQLite from folding its log, a file stayed locked): nothing may claim
    success. What is left is recorded and retried by the next erasure, purge or engine start
    (storage: the store's scrub-pending marker)."""


class LeaseLost(Exception):
    """This engine no longer holds its lease (`engine:<engine id>`): it was away longer than
    the lease and another engine took its calls over, or another process runs with the same
    engine id. It must not dial again: it stops (storage: start_attempts refuses it)."""


class AttemptClosed(Conflict):
    """finish_attempt on an attempt that is closed already: another engine took it over (its
    lead may be that engine's call by now); nothing was written."""

    def __init__(self, attempt_id: str) -> None:
        super().__init__(f"attempt {attempt_id} was closed already (taken over)")


class UnknownWidget(NotFound):
    """No widget has this public key: the intake's own "not found"."""

    def __init__(self) -> None:
        LookupError.__init__(self, "no widget has this public key")
        self.what = "widget"
        self.key = "(public key)"


class ChallengeFailed(Exception):
    """A widget's lead without a valid, unused, unexpired solution of its challenge."""
