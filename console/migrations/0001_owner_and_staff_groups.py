"""Roles per brand as groups: "Brand operators" (every team member: staff's permissions)
gains the view of the team; a new "Brand owners" group may manage the team, invite, and read
the audit log. Every existing operator became an owner (catalog 0009) and joins both."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

OPERATORS = "Brand operators"
OWNERS = "Brand owners"
OWNER_PERMISSIONS = {
    "catalog": [
        "view_brandoperator",
        "change_brandoperator",
        "delete_brandoperator",
        "view_brandinvitation",
        "add_brandinvitation",
    ],
    "audit": ["view_auditentry"],
}


def _permissions(apps, app_label, codenames):
    config = apps.get_app_config(app_label)
    config.models_module = True
    create_permissions(config, verbosity=0, apps=apps)
    config.models_module = None
    Permission = apps.get_model("auth", "Permission")
    return list(
        Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames)
    )


def forward(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    BrandOperator = apps.get_model("catalog", "BrandOperator")
    owners, _ = Group.objects.get_or_create(name=OWNERS)
    for app_label, codenames in OWNER_PERMISSIONS.items():
        owners.permissions.add(*_permissions(apps, app_label, codenames))
    view_team = _permissions(apps, "catalog", ["view_brandoperator"])
    operators = Group.objects.filter(name=OPERATORS).first()
    if operators is not None:
        operators.permissions.add(*view_team)
    for row in BrandOperator.objects.filter(role="owner").select_related("user"):
        row.user.groups.add(owners)
        if operators is not None:
            row.user.groups.add(operators)


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0009_brand_roles"),
        ("audit", "0002_append_only"),
        ("storefront", "0004_operators_see_stock_alerts"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
