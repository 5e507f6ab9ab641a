"""Existing "Brand operators" groups may run their brands' vouchers and QR placements.
storefront.demo grants the same to new demo groups."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "Brand operators"
CODENAMES = [
    *(
        f"{action}_{model}"
        for action in ("view", "add", "change", "delete")
        for model in ("voucher", "vouchercode", "placement")
    ),
    "view_voucheruse",
]


def grant(apps, schema_editor):
    marketing = apps.get_app_config("marketing")
    marketing.models_module = True
    create_permissions(marketing, verbosity=0, apps=apps)
    marketing.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permissions = Permission.objects.filter(
        content_type__app_label="marketing", codename__in=CODENAMES
    )
    for group in Group.objects.filter(name=GROUP):
        group.permissions.add(*permissions)


class Migration(migrations.Migration):
    dependencies = [
        ("storefront", "0004_operators_see_stock_alerts"),
        ("marketing", "0001_initial"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
