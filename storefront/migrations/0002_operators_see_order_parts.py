"""Existing "Brand operators" groups may view their order parts and those parts' refunds (the
order page showed them no "Order parts" section without it). storefront.demo grants the same
to new demo groups."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "Brand operators"
CODENAMES = ["view_orderpart", "view_orderrefund"]


def grant(apps, schema_editor):
    # Permissions are made after migrate; on a fresh database make orders' ones now.
    orders = apps.get_app_config("orders")
    orders.models_module = True
    create_permissions(orders, verbosity=0, apps=apps)
    orders.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permissions = Permission.objects.filter(
        content_type__app_label="orders", codename__in=CODENAMES
    )
    for group in Group.objects.filter(name=GROUP):
        group.permissions.add(*permissions)


class Migration(migrations.Migration):
    dependencies = [
        ("storefront", "0001_operators_moderate_reports_and_ideas"),
        ("orders", "0005_refund_collect_lease"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
