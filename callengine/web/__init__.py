"""The HTTP edge (aiohttp): lead intake for widgets (`intake`), lead status, and the admin API
(`admin`). Domain errors become RFC 9457 problem details here and only here (`problems`);
a bearer token becomes a principal in `auth`; the handlers call `callengine.services`."""

from callengine.web.app import make_app
from callengine.web.deps import WebDeps
from callengine.web.server import listening

__all__ = ["WebDeps", "listening", "make_app"]
