"""docs/openapi.yaml is valid OpenAPI 3.1 and describes exactly the routes the app registers
(the operations marked `x-callengine-planned` are specified ahead of their routes)."""

from __future__ import annotations

from pathlib import Path

import yaml
from openapi_spec_validator import validate

from callengine.web import WebDeps, make_app

SPEC_PATH = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def load_spec() -> dict:
    return yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))


def spec_operations(spec: dict) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(implemented, planned) operations as (METHOD, path template)."""
    implemented, planned = set(), set()
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                target = planned if item[method].get("x-callengine-planned") else implemented
                target.add((method.upper(), path))
    return implemented, planned


def registered_routes() -> set[tuple[str, str]]:
    """Every route the app serves as (METHOD, path template); the HEAD aiohttp adds to each
    GET is left out (HEAD answers as GET without a body), and so are the panel's pages (HTML
    for browsers, not the API the spec describes)."""
    app = make_app(WebDeps(services=None, admin_token="x"))  # type: ignore[arg-type]
    routes = {(route.method, route.resource.canonical) for route in app.router.routes()
              if not route.resource.canonical.startswith("/panel")}
    return {(m, p) for m, p in routes if not (m == "HEAD" and ("GET", p) in routes)}


def test_spec_is_valid_openapi_3_1():
    spec = load_spec()
    assert spec["openapi"].startswith("3.1")
    validate(spec)


def test_spec_matches_the_registered_routes():
    implemented, planned = spec_operations(load_spec())
    routes = registered_routes()
    assert routes - implemented - planned == set(), "routes missing from docs/openapi.yaml"
    assert implemented - routes == set(), "spec operations with no route (mark them planned?)"


def test_every_error_answer_is_a_problem_and_admin_routes_need_the_token():
    spec = load_spec()
    for path, item in spec["paths"].items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            for status, answer in operation["responses"].items():
                if int(status) >= 400:
                    ref = answer.get("$ref", "")
                    content = answer.get("content") or spec["components"]["responses"][
                        ref.rsplit("/", 1)[-1]]["content"]
                    assert list(content) == ["application/problem+json"], (method, path, status)
            public = path.startswith("/api/v1/widgets/{key}/") or path in (
                "/healthz", "/readyz", "/widget.js")
            assert (operation.get("security") == []) == public, (method, path)
