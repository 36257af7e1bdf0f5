"""Fixtures of the API tests: users, tokens and a small shop with known totals."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone

from patron.api.tokens import create_token, revoke_token
from patron.customers.models import Customer
from patron.orders.models import Order, Refund


@pytest.fixture
def api_user(db: None) -> User:
    """A non-staff user that machines act as."""
    return User.objects.create_user("shop-sync", password="not-used-here")


@pytest.fixture
def token(api_user: User) -> str:
    """A valid token's plaintext."""
    return create_token(api_user, "sync")[1]


@pytest.fixture
def revoked_token(api_user: User) -> str:
    """The plaintext of a token that has been revoked."""
    _, plaintext = create_token(api_user, "old")
    revoke_token(plaintext)
    return plaintext


@pytest.fixture
def expired_token(api_user: User) -> str:
    """The plaintext of a token that expired a second ago."""
    return create_token(api_user, "expired", timezone.now() - timedelta(seconds=1))[1]


@pytest.fixture
def manager_bearer(db: None) -> dict[str, str]:
    """Request headers carrying a token of a loyalty manager (a non-staff user in the
    ``loyalty_manager`` group: the tool a loyalty manager scripts with)."""
    manager = User.objects.create_user("loyalty-tool", password="not-used-here")
    manager.groups.add(Group.objects.get(name="loyalty_manager"))
    return {"Authorization": f"Bearer {create_token(manager, 'set-up')[1]}"}


@pytest.fixture
def staff_client(db: None) -> Client:
    """A client logged in as a staff member (the dashboard's session)."""
    staff = User.objects.create_user("staff", password="staff-pass-1", is_staff=True)
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def staff_client_in_role(db: None) -> Callable[..., Client]:
    """Makes a client logged in as a staff member in a role group (``role``, a
    ``StaffRoleChoices`` value), named ``username``: that role's dashboard session."""

    def make(role: str, username: str = "staff") -> Client:
        staff = User.objects.create_user(username, password="staff-pass-1", is_staff=True)
        staff.groups.add(Group.objects.get(name=role))
        client = Client()
        client.force_login(staff)
        return client

    return make


@pytest.fixture
def bearer(token: str) -> dict[str, str]:
    """Request headers carrying the valid token."""
    return {"Authorization": f"Bearer {token}"}


def shop_time(*args: int) -> datetime:
    """A UTC datetime for test data."""
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def shop(db: None) -> dict[str, Customer]:
    """The shop of :func:`seed_shop`."""
    return seed_shop()


def seed_shop() -> dict[str, Customer]:
    """Three customers; ``zhang`` has a paid order (300.00, 20.50 of it refunded), a
    delivered one (99.90), a cancelled one (500.00, not counted) and a returned one
    (120.00, wholly refunded): net spend 300.00 - 20.50 + 99.90 + 120.00 - 120.00 = 379.40."""
    zhang = Customer.objects.create(
        external_id="00042",
        name="张伟",
        email="zhang.wei@example.cn",
        phone="+8613812345678",
        gender="male",
        province="浙江",
        city="杭州",
        signup_channel="app",
        signed_up_at=shop_time(2023, 1, 5, 2, 0),
        birthday=datetime(1990, 5, 17).date(),
        tags=["vip"],
    )
    zhang.identities.create(kind="external_id", value="00042")
    zhang.identities.create(kind="phone", value="+8613812345678")
    li = Customer.objects.create(external_id="00043", name="李娜", email="li.na@example.cn")
    alice = Customer.objects.create(external_id="A-1", name="Alice Smith", phone="13900000000")

    def order(external_id: str, status: str, total: str, when: datetime) -> Order:
        return Order.objects.create(
            external_id=external_id,
            customer=zhang,
            ordered_at=when,
            status=status,
            subtotal_amount=Decimal(total),
            total_amount=Decimal(total),
        )

    paid = order("O-1", "paid", "300.00", shop_time(2024, 3, 1, 4, 0))
    order("O-2", "delivered", "99.90", shop_time(2024, 6, 18, 1, 30))
    order("O-3", "cancelled", "500.00", shop_time(2024, 11, 11, 16, 0))
    returned = order("O-4", "returned", "120.00", shop_time(2024, 7, 1, 8, 0))
    Refund.objects.create(
        external_id="R-1", order=paid, amount=Decimal("20.50"), refunded_at=shop_time(2024, 3, 5)
    )
    Refund.objects.create(
        external_id="R-2",
        order=returned,
        kind="return",
        amount=Decimal("120.00"),
        refunded_at=shop_time(2024, 7, 9),
    )
    return {"zhang": zhang, "li": li, "alice": alice}
