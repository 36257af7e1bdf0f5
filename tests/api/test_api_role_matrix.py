"""Every API operation × every kind of caller (anonymous, a token of a user in each staff
role, a token of an integration account in no role, a staff session in no role, a
superuser): the status each gets follows ``patron.core.roles.API_PERMISSIONS``. The
operations are read from the OpenAPI schema, so a new endpoint is in the matrix at once, and
one that declares no permission fails here. A hand-written table of key cells checks the
permission table itself. The docs tables (API permissions, commands) are checked against
the code."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import get_commands, load_command_class
from django.db import connection
from django.middleware.csrf import _get_new_csrf_string, _mask_cipher_secret
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext

from patron.api.auth import BearerTokenAuth, StaffSessionAuth
from patron.api.choices import ScopeChoices
from patron.api.errors import ApiError
from patron.api.tokens import create_token
from patron.api.v1 import api
from patron.core.roles import (
    API_PERMISSIONS,
    INTEGRATION,
    STAFF_WITHOUT_ROLE,
    ApiPermissionChoices,
    StaffRoleChoices,
)
from patron.customers.models import Customer

# Who may call what is decided in Python; the PostgreSQL pass would prove nothing new.
pytestmark = pytest.mark.database_agnostic

PREFIX = "/api/v1"
SCHEMA: dict[str, Any] = api.get_openapi_schema()
#: (METHOD, path under /api/v1, the operation's schema) of every operation.
OPERATIONS: list[tuple[str, str, dict[str, Any]]] = [
    (method.upper(), path.removeprefix(PREFIX), operation)
    for path, operations in SCHEMA["paths"].items()
    for method, operation in operations.items()
]
SUPERUSER = "superuser"
ANONYMOUS = "anonymous"
#: Every kind of caller: anonymous, the five roles' tokens, an integration account's token,
#: a staff session in no role, a superuser's token.
CALLERS = [ANONYMOUS, *StaffRoleChoices.values, INTEGRATION, STAFF_WITHOUT_ROLE, SUPERUSER]
#: Values for path parameters: the customer the test makes, any other value elsewhere (a 404
#: still shows the call got past the permission check).
PATH_VALUES = {"external_id": "00042", "customer_external_id": "00042", "category_path": "Tea"}

#: Key cells written by hand, not derived from the table: a wrong table fails here.
KEY_CELLS: dict[tuple[str, str, str], bool] = {
    ("POST", "/customers/{external_id}/erasure", StaffRoleChoices.ANALYST): False,
    ("POST", "/customers/{external_id}/erasure", StaffRoleChoices.SERVICE_AGENT): False,
    ("POST", "/customers/{external_id}/erasure", StaffRoleChoices.ADMIN): True,
    ("POST", "/customers/{external_id}/erasure", SUPERUSER): True,
    ("GET", "/customers/{external_id}/export", INTEGRATION): False,
    ("GET", "/customers/{external_id}/export", StaffRoleChoices.LOYALTY_MANAGER): False,
    ("GET", "/privacy/requests", StaffRoleChoices.MARKETER): False,
    ("POST", "/loyalty/members/{customer_external_id}/adjustments", "service_agent"): True,
    ("POST", "/loyalty/members/{customer_external_id}/adjustments", "marketer"): False,
    ("POST", "/loyalty/members/{customer_external_id}/adjustments", "analyst"): False,
    ("POST", "/loyalty/members/{customer_external_id}/adjustments", INTEGRATION): True,
    ("POST", "/loyalty/members/{customer_external_id}/redemptions", STAFF_WITHOUT_ROLE): False,
    ("PUT", "/loyalty/programme", StaffRoleChoices.LOYALTY_MANAGER): True,
    ("PUT", "/loyalty/programme", StaffRoleChoices.SERVICE_AGENT): False,
    ("PUT", "/loyalty/programme", INTEGRATION): False,
    ("POST", "/coupons/templates", StaffRoleChoices.MARKETER): True,
    ("POST", "/coupons/templates", StaffRoleChoices.ANALYST): False,
    ("POST", "/coupons/templates", INTEGRATION): False,
    ("POST", "/coupons/{code}/redeem", INTEGRATION): True,
    ("POST", "/ingest/orders", INTEGRATION): True,
    ("POST", "/ingest/orders", STAFF_WITHOUT_ROLE): False,
    ("POST", "/ingest/orders", StaffRoleChoices.MARKETER): False,
    ("PATCH", "/customers/{external_id}/profile", StaffRoleChoices.SERVICE_AGENT): True,
    ("PATCH", "/customers/{external_id}/profile", StaffRoleChoices.LOYALTY_MANAGER): False,
    ("POST", "/customers/{external_id}/consents", StaffRoleChoices.SERVICE_AGENT): True,
    ("POST", "/customers/{external_id}/consents", StaffRoleChoices.ANALYST): False,
    ("GET", "/customers", STAFF_WITHOUT_ROLE): True,
    ("GET", "/analytics/segments", StaffRoleChoices.ANALYST): True,
    ("GET", "/analytics/segments", StaffRoleChoices.SERVICE_AGENT): False,
    ("GET", "/customers/{external_id}/recommendations", StaffRoleChoices.MARKETER): True,
    ("POST", "/recommendations/feedback", StaffRoleChoices.ANALYST): False,
}


def allowed_callers(operation: dict[str, Any]) -> frozenset[str]:
    """Who may call ``operation`` by the permission table (superusers always)."""
    return API_PERMISSIONS[operation["x-permission"]] | {SUPERUSER}


def fill_path(path: str) -> str:
    """``path`` with each ``{parameter}`` replaced by a value."""
    return re.sub(r"\{(\w+)\}", lambda match: PATH_VALUES.get(match[1], "1"), path)


def caller_client(caller: str) -> tuple[Client, dict[str, str]]:
    """A client and headers for ``caller``: a token with every scope for a role, an
    integration account or a superuser; a session with a CSRF cookie for staff in no role."""
    if caller == ANONYMOUS:
        return Client(), {}
    if caller == STAFF_WITHOUT_ROLE:
        staff = User.objects.create_user("staff-no-role", is_staff=True)
        client = Client(enforce_csrf_checks=True)
        client.force_login(staff)
        secret = _get_new_csrf_string()
        client.cookies["csrftoken"] = secret
        return client, {"X-CSRFToken": _mask_cipher_secret(secret)}
    user = User.objects.create_user(f"{caller}-tool", is_superuser=caller == SUPERUSER)
    if caller in StaffRoleChoices.values:
        user.groups.add(Group.objects.get(name=caller))
    return Client(), {"Authorization": f"Bearer {create_token(user, 'matrix')[1]}"}


def call(client: Client, method: str, path: str, headers: dict[str, str]) -> Any:
    """Call ``method path``; a write sends ``{}``, not a valid body for any write, so a
    caller let through gets a 4xx of its own (422) and nothing is written, while a refused
    caller must get 403 before the body is read."""
    body = None if method == "GET" else "{}"
    return client.generic(
        method,
        PREFIX + fill_path(path),
        data=body or "",
        content_type="application/json",
        headers={**headers, "Idempotency-Key": "role-matrix"},
    )


@pytest.fixture
def customer(db: None) -> Customer:
    """The customer the path parameters name."""
    return Customer.objects.create(external_id="00042", name="张伟", email="zhang@example.cn")


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(
    ("method", "path", "operation"),
    OPERATIONS,
    ids=[f"{method} {path}" for method, path, _ in OPERATIONS],
)
def test_operation_answers_each_caller_by_the_permission_table(
    customer: Customer, method: str, path: str, operation: dict[str, Any], caller: str
) -> None:
    # given
    client, headers = caller_client(caller)
    permission = operation["x-permission"]
    is_allowed = caller in allowed_callers(operation)
    if (method, path, caller) in KEY_CELLS:
        assert is_allowed == KEY_CELLS[(method, path, caller)], "the permission table is wrong"
    # when
    response = call(client, method, path, headers)
    # then
    if caller == ANONYMOUS:
        assert (response.status_code, response.json()["code"]) == (401, "unauthenticated")
    elif is_allowed:
        assert response.status_code not in (401, 403), response.content
    else:
        assert response["Content-Type"] == "application/json; charset=utf-8"
        body = response.json()
        assert (response.status_code, body["code"]) == (403, "forbidden")
        assert body["required_permission"] == permission
        assert body["allowed_roles"] == sorted(API_PERMISSIONS[permission])
        assert f"'{permission}' permission" in body["message"]


def test_every_operation_declares_a_permission() -> None:
    undeclared = [f"{method} {path}" for method, path, op in OPERATIONS if "x-permission" not in op]
    assert undeclared == []


def test_the_schema_names_each_operations_permission_and_roles() -> None:
    for method, path, operation in OPERATIONS:
        permission = operation["x-permission"]
        assert operation["x-roles"] == sorted(API_PERMISSIONS[permission]), (method, path)
        assert f"Permission: `{permission}`" in operation["description"], (method, path)


def test_the_key_cells_name_real_operations_and_callers() -> None:
    operations = {(method, path) for method, path, _ in OPERATIONS}
    for method, path, caller in KEY_CELLS:
        assert (method, path) in operations
        assert caller in CALLERS


def test_every_permission_is_used_by_an_operation() -> None:
    used = {operation["x-permission"] for _, _, operation in OPERATIONS}
    assert used == set(ApiPermissionChoices.values) == set(API_PERMISSIONS)


@pytest.mark.parametrize(
    ("caller", "is_allowed"),
    [
        (StaffRoleChoices.ADMIN, True),
        (SUPERUSER, True),
        (StaffRoleChoices.LOYALTY_MANAGER, False),
        (INTEGRATION, False),
        (STAFF_WITHOUT_ROLE, False),
    ],
)
def test_an_operation_that_declares_no_permission_is_for_administrators_only(
    db: None, caller: str, is_allowed: bool
) -> None:
    # given: the callbacks an operation without a declared permission gets
    user = User.objects.create_user(
        f"{caller}-user", is_staff=caller == STAFF_WITHOUT_ROLE, is_superuser=caller == SUPERUSER
    )
    if caller in StaffRoleChoices.values:
        user.groups.add(Group.objects.get(name=caller))
    token = create_token(user, "undeclared")[1]
    request = RequestFactory().get(
        "/api/v1/undeclared", headers={"Authorization": f"Bearer {token}"}
    )
    session_request = RequestFactory().get("/api/v1/undeclared")
    session_request.user = user
    authenticate_token: Callable[..., Any] = BearerTokenAuth(ScopeChoices.READ, None)
    authenticate_session: Callable[..., Any] = StaffSessionAuth(None)
    # when / then: by token, and (for staff) by session
    for authenticate, a_request in [
        (authenticate_token, request),
        (authenticate_session, session_request),
    ]:
        if authenticate is authenticate_session and not user.is_staff:
            continue
        if is_allowed:
            assert authenticate(a_request) == user
            continue
        with pytest.raises(ApiError) as refused:
            authenticate(a_request)
        assert (refused.value.status, refused.value.code) == (403, "forbidden")
        assert refused.value.extra == {"required_permission": None, "allowed_roles": ["admin"]}
        assert "declares no permission, so only these roles may call it: admin" in str(
            refused.value
        )


@pytest.mark.parametrize("caller", [StaffRoleChoices.MARKETER, StaffRoleChoices.ADMIN, INTEGRATION])
def test_a_request_reads_the_callers_roles_once(customer: Customer, caller: str) -> None:
    # given: the permission check and the masking both ask for the roles
    client, headers = caller_client(caller)
    # when
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"{PREFIX}/customers/00042", headers=headers)
    # then
    assert response.status_code == 200
    group_reads = [query for query in queries if '"auth_group"' in query["sql"]]
    assert len(group_reads) == 1


def test_a_refused_write_is_refused_before_its_body_is_read(customer: Customer) -> None:
    # given: an analyst, and a body that is not even JSON
    client, headers = caller_client(StaffRoleChoices.ANALYST)
    # when
    response = client.post(
        f"{PREFIX}/customers/00042/erasure",
        "not json",
        content_type="application/json",
        headers={**headers, "Idempotency-Key": "k"},
    )
    # then: 403, not 400 or 422
    assert (response.status_code, response.json()["code"]) == (403, "forbidden")
    assert response.json()["allowed_roles"] == ["admin"]
    assert Customer.objects.get().external_id == "00042"


# --- The docs tables -----------------------------------------------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs" / "privacy.md"


def docs_table(heading: str) -> list[list[str]]:
    """The rows of the first table under ``heading`` in docs/privacy.md (header row first),
    each a list of cells."""
    text = DOCS.read_text(encoding="utf-8")
    section = text.split(f"\n{heading}\n", 1)[1]
    rows = []
    for line in section.splitlines():
        if line.startswith("#"):
            break
        if line.startswith("|") and not line.startswith("| ---"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def test_the_docs_permission_table_is_the_code_table() -> None:
    # given: a row per permission, a column per caller ("yes" where allowed)
    header, *rows = docs_table("### API permissions")
    callers = [re.sub(r"[`*]", "", cell).split()[0] for cell in header[2:]]
    assert set(callers) == set(CALLERS) - {ANONYMOUS, SUPERUSER}
    documented: dict[str, frozenset[str]] = {}
    endpoints: dict[str, set[str]] = {}
    for row in rows:
        permission = row[0].strip("`")
        documented[permission] = frozenset(
            caller for caller, cell in zip(callers, row[2:], strict=True) if cell == "yes"
        )
        endpoints[permission] = set(re.findall(r"`([A-Z]+ [^`]+)`", row[1]))
    # then: the same roles, and the same operations, as the code
    assert documented == {str(key): value for key, value in API_PERMISSIONS.items()}
    expected: dict[str, set[str]] = {}
    for method, path, operation in OPERATIONS:
        expected.setdefault(operation["x-permission"], set()).add(f"{method} {path}")
    assert endpoints == expected


def patron_commands() -> set[str]:
    """Every ``patron`` command of the project's apps, with its subcommands (``patron token
    create``) or jobs (``patron privacy erase``) where it has them."""
    names = set()
    for name, app in get_commands().items():
        if not app.startswith("patron"):
            continue
        parser = load_command_class(app, name).create_parser("patron", name)
        subcommands: list[str] = []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction) or (
                action.dest == "job" and action.choices
            ):
                subcommands += list(action.choices)
        names |= {f"patron {name} {sub}" for sub in subcommands} or {f"patron {name}"}
    return names


def test_the_docs_command_table_lists_every_command() -> None:
    # given
    header, *rows = docs_table("### Commands")
    documented = {row[0].strip("`") for row in rows}
    # then
    assert header[0] == "command"
    assert documented == patron_commands()
