"""Create the staff role groups (admin, loyalty manager, marketer, service agent, analyst)."""

from django.db import migrations

# Frozen here rather than imported from patron.core.roles: a migration must keep meaning what
# it meant when it was written.
ROLE_CODENAMES = ["admin", "loyalty_manager", "marketer", "service_agent", "analyst"]


def create_roles(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for codename in ROLE_CODENAMES:
        Group.objects.get_or_create(name=codename)


def delete_roles(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.filter(name__in=ROLE_CODENAMES).delete()


class Migration(migrations.Migration):
    dependencies = [("auth", "0012_alter_user_first_name_max_length")]

    operations = [migrations.RunPython(create_roles, delete_roles)]
