"""The use cases, once: what the HTTP API (callengine.web), the CLI (callengine.cli) and the
panel do, each checking its actor's permission and writing its audit entry. Views of what
users see are in `views`; domain errors (callengine.errors and the packages' own) carry no
HTTP status or exit code: the edges map them."""

from callengine.services.facade import Services, open_services

__all__ = ["Services", "open_services"]
