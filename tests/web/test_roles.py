"""Staff roles exist as auth groups once the store is migrated."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from patron.core.roles import StaffRoleChoices


@pytest.mark.django_db
def test_role_groups_exist_after_migrate() -> None:
    # when
    names = set(Group.objects.values_list("name", flat=True))
    # then
    assert names >= {"admin", "loyalty_manager", "marketer", "service_agent", "analyst"}
    assert {role.value for role in StaffRoleChoices} == {
        "admin",
        "loyalty_manager",
        "marketer",
        "service_agent",
        "analyst",
    }
