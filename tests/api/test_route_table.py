"""Every route of the app, taken from the app itself: none is open by accident, and every
administrator route refuses a public user's token.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from accounts import Account
from serving.api.app import API_PREFIX
from serving.api.deps import admin_caller, bearer_credentials
from serving.api.routers import ROUTERS

OPEN = {
    ("POST", "/auth/register"),
    ("POST", "/auth/login"),
    ("POST", "/auth/refresh"),
    ("GET", "/system/health"),
}


def _routes() -> Iterator[tuple[str, str, APIRoute]]:
    for router in ROUTERS:
        for route in router.routes:
            assert isinstance(route, APIRoute)
            for method in sorted(route.methods):
                yield method, route.path_format, route


def _needs(dependant: Dependant, guard: object) -> bool:
    return any(sub.call is guard or _needs(sub, guard) for sub in dependant.dependencies)


def _url(path: str) -> str:
    """The path with every parameter set to 1 (ids) so that routing succeeds."""
    return API_PREFIX + re.sub(r"\{[^}]+\}", "1", path)


def test_the_route_table_covers_the_spec_list() -> None:
    paths = {(method, path) for method, path, _ in _routes()}
    spec = {
        ("GET", "/macro/regime"),
        ("GET", "/sectors/{sector_id}/performance"),
        ("POST", "/watchlists/{watchlist_id}/items"),
        ("PUT", "/watchlist-items/{item_id}"),
        ("POST", "/suggestions/{suggestion_id}/review"),
        ("POST", "/signals/{signal_id}/execute"),
        ("GET", "/user/{user_id}/risk-profile"),
        ("POST", "/predictions"),
        ("PUT", "/predictions/{prediction_id}"),
        ("GET", "/predictions/{prediction_id}/accuracy"),
        ("GET", "/dashboard/casual"),
        ("POST", "/system/models/{model_id}/retrain"),
        ("PUT", "/notifications/{notification_id}/read"),
    }
    assert spec <= paths, spec - paths


def test_no_route_is_open_by_accident(client: TestClient) -> None:
    failures = []
    for method, path, route in _routes():
        guarded = _needs(route.dependant, bearer_credentials)
        if (method, path) in OPEN:
            assert not guarded, f"{method} {path} is meant to be open"
            continue
        if not guarded:
            failures.append(f"{method} {path}: no authentication dependency")
            continue
        response = client.request(method, _url(path), json={})
        if response.status_code != 401:
            failures.append(f"{method} {path}: {response.status_code} without a token")
    assert not failures, failures


def test_every_admin_route_refuses_a_public_token(client: TestClient, alice: Account) -> None:
    admin_routes = [
        (method, path) for method, path, route in _routes() if _needs(route.dependant, admin_caller)
    ]
    assert len(admin_routes) >= 4, admin_routes
    failures = []
    for method, path in admin_routes:
        response = client.request(method, _url(path), headers=alice.headers, json={})
        if response.status_code != 403:
            failures.append(f"{method} {path}: {response.status_code}")
    assert not failures, failures


def test_a_405_allows_exactly_the_methods_of_its_path(client: TestClient) -> None:
    """OPTIONS is no method of this API: every path answers it 405, and `Allow` names every
    method the schema gives the path (the router alone named the first matching route's only,
    e.g. `Allow: POST` for `/predictions`, which also answers GET)."""
    paths = client.get("/openapi.json").json()["paths"]
    assert len(paths) >= 40
    failures = []
    for path, operations in paths.items():
        answer = client.options(re.sub(r"\{[^}]+\}", "1", path))
        expected = ", ".join(sorted(method.upper() for method in operations))
        if answer.status_code != 405 or answer.headers.get("allow") != expected:
            failures.append(f"{path}: {answer.status_code} {answer.headers.get('allow')}")
    assert not failures, failures
