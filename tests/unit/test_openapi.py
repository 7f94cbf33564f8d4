"""The OpenAPI document is generated from the route table: every HTTP route the app serves
is documented, and every documented operation is served."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from services.gateway.app import create_app
from services.gateway.openapi import document
from shared.config import Settings


def app() -> Starlette:
    parts: Any = SimpleNamespace(lifespan=None)  # no route below reaches a part
    return create_app(Settings(), parts)


def served(routes: list[Any]) -> set[tuple[str, str]]:
    """(path, method) of every HTTP route meant for the document (HEAD comes with GET)."""
    return {(r.path, m.lower()) for r in routes if isinstance(r, Route) and r.include_in_schema
            for m in r.methods or () if m != "HEAD"}


def test_every_route_is_documented_and_every_documented_operation_is_served() -> None:
    routes = app().routes
    documented = {(path, method) for path, item in document(routes)["paths"].items()
                  for method in item}
    assert documented == served(routes)
    assert ("/orders/{order_id}", "delete") in documented and ("/", "get") in documented


def test_a_route_added_without_its_operation_is_caught() -> None:
    async def endpoint(request: Any) -> Any:
        raise AssertionError

    routes = [*app().routes, Route("/new", endpoint, methods=["GET"])]
    documented = {(p, m) for p, item in document(routes)["paths"].items() for m in item}
    assert served(routes) - documented == {("/new", "get")}


def test_the_served_document_is_the_route_tables() -> None:
    application = app()
    response = TestClient(application).get("/openapi.json")
    assert response.status_code == 200
    assert response.json() == document(application.routes)


def test_keyed_operations_say_so_and_public_ones_need_no_key() -> None:
    paths = document(app().routes)["paths"]
    public = {p for p, item in paths.items() for op in item.values() if op.get("security") == []}
    assert public == {"/", "/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"}
    for path, item in paths.items():
        for op in item.values():
            assert "500" in op["responses"], path
            if path not in public:
                assert {"401", "503"} <= set(op["responses"]), path
