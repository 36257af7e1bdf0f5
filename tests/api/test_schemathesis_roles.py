"""Schemathesis over the whole OpenAPI schema, once for each role and for anonymous callers.

Every operation of ``/api/v1/openapi.json`` is called with cases generated from its schema,
valid and invalid ones (derandomized, so the run is the same every time), by a token of each
staff role holding every scope, by a token of a user in no role (an integration account) and
without credentials. Each answer must be no server error, match its documented status codes,
content type and response schema, keep the operation's role rule (``x-roles``: 403 exactly
for the roles it does not name), and leak nothing: roles that read personal data masked never
get a seeded plaintext name, e-mail, phone (in any spelling), address or full birthday back
(nor an export), and anonymous callers get a bare 401. No generated input holds a seeded
personal value, and the one endpoint that echoes personal input (the profile correction) is
for unmasked roles only, so any seeded value in a masked role's answer is a leak.

About half of the generated ids (path, query and top-level body) are swapped for the seeded
shop's real ones, drawn by Hypothesis, so that handlers run past their 404s: schemathesis
alone (``anyOf`` with the real ids in the schema is simplified away) nearly never finds one.
Writes are undone after each operation and role (each test is a savepoint over the module's
seeded shop), but persist between the examples of one test.

Run it alone with ``pytest tests/api/test_schemathesis_roles.py``; it prints how many calls
of each role got which answers.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import schemathesis
from django.contrib.auth.models import Group, User
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import Case, CheckContext, Response
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from patron.analytics.services import run_analysis
from patron.api.tokens import create_token
from patron.api.v1 import api
from patron.catalog.models import Category, Product
from patron.core.roles import StaffRoleChoices
from patron.customers.models import Customer
from patron.loyalty.coupons import create_coupon_template, generate_coupon_codes
from patron.loyalty.ledger import adjust_points
from patron.loyalty.members import enrol_member
from patron.loyalty.rewards import create_reward
from patron.loyalty.tiers import define_tier
from patron.privacy.consent import record_consent
from patron.wsgi import application
from tests.api.conftest import seed_shop

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

#: A user in no role group: an integration account (the shop's systems).
INTEGRATION = "integration"
#: No credentials at all.
ANONYMOUS = "anonymous"
ROLES: list[str] = [*StaffRoleChoices.values, INTEGRATION, ANONYMOUS]
#: Roles that read personal data unmasked (``patron.core.roles.UNMASKED_ROLES``).
UNMASKED = {StaffRoleChoices.ADMIN.value, StaffRoleChoices.SERVICE_AGENT.value}

#: Examples per operation and role (an operation without parameters has fewer), positive and
#: negative: 42 operations x 7 callers, about 2,000 calls, in 35 s of CPU.
MAX_EXAMPLES = 8

#: Seeded customers beyond the ``shop`` fixture's three, with every personal field set.
EXTRA_CUSTOMERS: dict[str, dict[str, Any]] = {
    "F-OUYANG": {
        "name": "欧阳明月",
        "email": "ouyang.mingyue@example.cn",
        "phone": "+8613700001111",
        "birthday": date(1985, 11, 3),
        "address": "浙江省杭州市西湖区文三路 90 号 3 幢 501 室",
    },
    "F-DUPONT": {
        "name": "Émile Dupont-Lefèvre",
        "email": "Emile.Dupont@Example.FR",
        "phone": "+33612345678",
        "birthday": date(1979, 2, 28),
        "address": "12 rue des Lilas, 75011 Paris",
    },
    "F-WANG": {
        "name": "王小红",
        "email": "xiaohong.wang@example.com",
        "phone": "15912345678",
        "birthday": date(2001, 8, 8),
        "address": "上海市浦东新区世纪大道 100 号",
    },
}
CUSTOMER_IDS = ["00042", "00043", "A-1", *EXTRA_CUSTOMERS]
MEMBER_IDS = ["00042", "A-1", "F-OUYANG", "F-DUPONT"]
PRODUCT_IDS = ["P-TEA", "P-CUP"]
CATEGORY_PATHS = ["Drinks", "Drinks > Tea"]
ORDER_IDS = ["O-1", "O-2"]
COUPON_CODES = ["FUZZ-ONE-0001", "FUZZ-MANY-0001"]
REFERRAL_CODES = ["FUZZREF1"]
#: Real values offered for path and query parameters and top-level body properties, by name
#: (ids of rows made while seeding are added by :func:`_seed`).
REAL_VALUES: dict[str, list[Any]] = {
    "external_id": CUSTOMER_IDS,
    "customer_external_id": [*MEMBER_IDS, "00043"],
    "customer": CUSTOMER_IDS,
    "customer_id": CUSTOMER_IDS,
    "product_id": PRODUCT_IDS,
    "category_path": CATEGORY_PATHS,
    "code": COUPON_CODES,
    "order_id": ORDER_IDS,
    "referral_code": REFERRAL_CODES,
    # Decimals the schema also types as free text, which the server must parse.
    "order_total": ["150.00", "99.99"],
    "multiplier": ["1.5", "2"],
    "threshold": ["500"],
    "earn_multiplier": ["1.25"],
    "minimum_spend_amount": ["0", "100"],
}
#: Values that differ by operation: body properties the schema types as free text but the
#: server takes from a list (``kind``), by the operation's path.
OPERATION_VALUES: dict[str, dict[str, list[Any]]] = {
    "/api/v1/coupons/templates": {
        "kind": ["fixed_amount", "percentage", "free_shipping"],
        "value": ["20", "10.5"],
    },
    "/api/v1/loyalty/rewards": {"kind": ["coupon", "free_shipping", "gift"]},
    "/api/v1/recommendations/feedback": {"kind": ["shown", "clicked", "dismissed", "purchased"]},
}
#: A valid record of each import, merged into a generated one (whose other columns the
#: import ignores and reports), so that imports run past "required column missing".
INGEST_RECORDS: dict[str, dict[str, Any]] = {
    "/api/v1/ingest/customers": {
        "customer_id": "F-NEW",
        "name": "新顾客",
        "email": "new.customer@example.cn",
        "phone": "+8618600001234",
    },
    "/api/v1/ingest/products": {"product_id": "P-NEW", "name": "Mug", "price": "9.90"},
    "/api/v1/ingest/orders": {
        "order_id": "O-NEW",
        "customer_id": "00042",
        "ordered_at": "2024-05-01T10:00:00+08:00",
        "product_id": "P-TEA",
        "quantity": 2,
        "unit_price": "50.00",
    },
    "/api/v1/ingest/events": {
        "event_id": "E-NEW",
        "customer_id": "00042",
        "event_type": "view",
        "occurred_at": "2024-05-01T10:00:00+08:00",
        "product_id": "P-TEA",
    },
}


def _fuzz_config() -> SchemathesisConfig:
    """Positive cases (what the schema allows) and negative ones (what it does not: each must
    be refused with a documented 4xx), generated and shrunk deterministically, by the fuzzing
    phase alone (the coverage phase adds hundreds of boundary cases per operation: too slow
    for every test run)."""
    return SchemathesisConfig.from_dict(
        {
            "generation": {
                "mode": "all",
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "database": "none",
                "with-security-parameters": False,
            },
            # The examples phase cannot be combined with the ``data`` drawn for real ids;
            # the one example in the schema (PUT /loyalty/programme) is within what the
            # fuzzing phase generates.
            # Generation never learns from the answers (ids seen in responses, hints in 4xx
            # bodies): the same cases on every run and both databases, whatever they answer.
            "phases": {
                "examples": {"enabled": False},
                "coverage": {"enabled": False},
                "stateful": {"enabled": False},
                "fuzzing": {
                    "extra-data-sources": {"responses": False},
                    "error-feedback": {"enabled": False},
                },
            },
        }
    )


schema = schemathesis.openapi.from_dict(
    json.loads(json.dumps(api.get_openapi_schema())), config=_fuzz_config()
)
schema.app = application


@dataclass
class Seeded:
    """What the seeded shop holds: each role's request headers, the real values to swap into
    cases, the personal values masked roles must never see, and the tally of answers."""

    headers: dict[str, dict[str, str]]
    real_values: dict[str, list[Any]]
    secrets: list[str]
    statuses: dict[str, Counter[str]] = field(default_factory=dict)
    #: Answers to the unmasked roles that held a seeded plaintext value, by role.
    plain_reads: Counter[str] = field(default_factory=Counter)
    #: Numbers the ``Idempotency-Key`` of each write.
    keys: Iterator[int] = field(default_factory=lambda: itertools.count(1))


def _phone_spellings(phone: str) -> list[str]:
    """``phone`` as people write it: E.164, national digits, spaced and dashed."""
    digits = phone.lstrip("+")
    national = digits[2:] if phone.startswith("+86") else digits
    spellings = {phone, digits, national}
    if len(national) == 11:
        spellings |= {
            f"{national[:3]} {national[3:7]} {national[7:]}",
            f"{national[:3]}-{national[3:7]}-{national[7:]}",
            f"+86 {national[:3]} {national[3:7]} {national[7:]}",
        }
    return sorted(spellings)


def _personal_values(customers: list[Customer]) -> list[str]:
    """Every plaintext personal value of ``customers`` a masked reader must not see."""
    values: set[str] = set()
    for customer in customers:
        values |= {customer.name, customer.email.lower(), customer.address}
        if customer.phone:
            values.update(_phone_spellings(customer.phone))
        if customer.birthday:
            values |= {customer.birthday.isoformat(), customer.birthday.strftime("%Y%m%d")}
    return sorted(value for value in values if value)


def _token_headers(role: str) -> dict[str, str]:
    """Headers of a token with every scope, of a user in ``role``'s group (or in none)."""
    if role == ANONYMOUS:
        return {}
    user = User.objects.create_user(f"fuzz-{role}", password="not-used-here")
    if role != INTEGRATION:
        user.groups.add(Group.objects.get(name=role))
    return {"Authorization": f"Bearer {create_token(user, 'fuzz')[1]}"}


def _seed() -> Seeded:
    """The shop every role's calls run against: customers with every kind of personal data,
    products, a programme with tiers, members with points, a reward, coupons and consents."""
    customers = list(seed_shop().values())
    customers += [
        Customer.objects.create(external_id=external_id, **values)
        for external_id, values in EXTRA_CUSTOMERS.items()
    ]
    by_id = {customer.external_id: customer for customer in customers}
    drinks = Category.objects.create(name="Drinks", path="Drinks")
    tea = Category.objects.create(name="Tea", parent=drinks, path="Drinks > Tea")
    Product.objects.create(external_id="P-TEA", name="Longjing", category=tea, price_amount=50)
    Product.objects.create(external_id="P-CUP", name="Cup", category=drinks, price_amount=20)

    define_tier("Gold", 1000, earn_multiplier=Decimal("1.5"))
    define_tier("Basic", 0)
    for number, external_id in enumerate(MEMBER_IDS):
        member = enrol_member(by_id[external_id])
        adjust_points(
            member, 500 + 100 * number, reason="welcome", actor="test", idempotency_key=f"s{number}"
        )
    type(member).objects.filter(pk=member.pk).update(referral_code=REFERRAL_CODES[0])

    template = create_coupon_template(
        name="20 off", kind="fixed_amount", value=Decimal(20), minimum_spend_amount=Decimal(100)
    )
    codes = iter(COUPON_CODES)
    generate_coupon_codes(template, 1, code_factory=lambda: next(codes))
    generate_coupon_codes(template, 1, use_limit=None, code_factory=lambda: next(codes))
    reward = create_reward(name="Tea sample", kind="gift", points_cost=100, stock=5)
    for customer in customers[:3]:
        record_consent(
            customer, "marketing", "email", is_granted=True, source="api", wording_version="v1"
        )
    # Without models: a quarter of a second, and the analytics endpoints answer past 404.
    analysis = run_analysis(with_models=False)
    return Seeded(
        headers={role: _token_headers(role) for role in ROLES},
        real_values={
            **REAL_VALUES,
            "template_id": [template.pk],
            "coupon_template_id": [template.pk],
            "reward_id": [reward.pk],
            "run": [analysis.pk],
        },
        secrets=_personal_values(customers),
    )


@pytest.fixture(scope="module")
def seeded(
    django_db_setup: None, django_db_blocker: Any, request: pytest.FixtureRequest
) -> Iterator[Seeded]:
    """The seeded shop, kept for the module in a transaction rolled back at its end.

    Calls go through the WSGI application, whose request signals would close the database
    connection (and with it the open transaction) after each one: they are disconnected for
    the module, as Django's test client does for each of its requests.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        with django_db_blocker.unblock(), transaction.atomic():
            data = _seed()
            yield data
            transaction.set_rollback(True)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    _report(request.config, data.statuses)


def _report(config: pytest.Config, statuses: dict[str, Counter[str]]) -> None:
    """Print the answers by role and status class (how far the calls got), past the capture."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        for role, counts in statuses.items():
            total = sum(counts.values())
            reporter.write_line(
                f"schemathesis {role}: {total} calls, "
                + ", ".join(
                    f"{status} {count} ({count / total:.0%})"
                    for status, count in sorted(counts.items())
                )
            )


@pytest.fixture(params=ROLES)
def role(request: pytest.FixtureRequest) -> str:
    """The caller: a staff role, an integration account or anonymous."""
    value: str = request.param
    return value


def _use_real_values(case: Case, data: st.DataObject, real_values: dict[str, list[Any]]) -> None:
    """Give about half of the case's parameters and body properties that name a seeded row
    (:data:`REAL_VALUES`) or a value from a list (:data:`OPERATION_VALUES`) a real value, and
    half of the imports a valid record, drawn by Hypothesis (so derandomized too)."""
    path = case.operation.path
    values = {**real_values, **OPERATION_VALUES.get(path, {})}
    containers: list[dict[str, Any]] = [case.path_parameters or {}, case.query or {}]
    if isinstance(case.body, dict):
        containers.append(case.body)
    for container in containers:
        for name in sorted(set(container) & set(values)):
            if data.draw(st.booleans(), label=f"real {name}"):
                container[name] = data.draw(st.sampled_from(values[name]), label=name)
    is_import = path in INGEST_RECORDS and isinstance(case.body, list)
    if is_import and data.draw(st.booleans(), label="valid record"):
        generated = case.body[0] if case.body and isinstance(case.body[0], dict) else {}
        case.body = [{**generated, **INGEST_RECORDS[path]}]


def _body_text(response: Response) -> str:
    """The response body as text, JSON re-encoded without ``\\u`` escapes."""
    text = response.content.decode("utf-8", errors="replace")
    try:
        return json.dumps(json.loads(text), ensure_ascii=False)
    except ValueError:
        return text


@schema.parametrize()
@schema.given(data=st.data())
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_for_every_role(
    case: Case, data: st.DataObject, role: str, seeded: Seeded
) -> None:
    """No server error, no undocumented status, content type or body, the operation's role
    rule kept, no personal data to a masked role, nothing but a 401 to anonymous callers."""
    _use_real_values(case, data, seeded.real_values)
    headers = dict(seeded.headers[role])
    if case.method.upper() != "GET":
        # A fresh key each call: the writes that need one run past the 422.
        headers["Idempotency-Key"] = f"fuzz-{next(seeded.keys)}"

    def anonymous_refused(ctx: CheckContext, response: Response, case: Case) -> bool | None:
        if role == ANONYMOUS:
            text = _body_text(response)
            assert response.status_code == 401, f"anonymous call answered: {text[:300]}"
            assert set(json.loads(text)) == {"code", "message"}, f"401 with data: {text[:300]}"
        return None

    def role_rule_kept(ctx: CheckContext, response: Response, case: Case) -> bool | None:
        # The roles an operation admits (``x-roles``, the users in no role as
        # ``integration``); a token with every scope is refused only for its role.
        allowed = case.operation.definition.raw.get("x-roles")
        if role == ANONYMOUS or allowed is None:
            return None
        refused = response.status_code == 403
        assert refused == (role not in allowed), (
            f"{role} got {response.status_code} where x-roles admits {allowed}: "
            f"{_body_text(response)[:300]}"
        )
        return None

    def no_leak(ctx: CheckContext, response: Response, case: Case) -> bool | None:
        lowered = _body_text(response).lower()
        seen = [value for value in seeded.secrets if value.lower() in lowered]
        if role in UNMASKED:
            seeded.plain_reads[role] += bool(seen)
        else:
            assert not seen, f"{role} got personal data {seen} in {lowered[:500]}"
        if role not in UNMASKED and "/export" in case.operation.path:
            assert response.status_code in (401, 403), f"{role} exported personal data"
        return None

    response = case.call(headers=headers)
    status = response.status_code
    # 403 apart: the refusals of the role rules, not a call that went nowhere.
    seeded.statuses.setdefault(role, Counter())[
        "403" if status == 403 else f"{status // 100}xx"
    ] += 1
    case.validate_response(
        response,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
            anonymous_refused,
            role_rule_kept,
            no_leak,
        ],
        headers=headers,
    )


def test_the_leak_check_sees_plain_personal_data(seeded: Seeded) -> None:
    """The seeded values are what the API answers unmasked (admins and service agents read
    them): the leak check above looks for the right strings."""
    if not set(UNMASKED) <= set(seeded.statuses):
        pytest.skip("runs after the schemathesis test above, for admins and service agents")
    assert seeded.plain_reads[StaffRoleChoices.ADMIN] > 0
    assert seeded.plain_reads[StaffRoleChoices.SERVICE_AGENT] > 0
