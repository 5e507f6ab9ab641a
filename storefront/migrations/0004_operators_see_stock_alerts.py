"""Existing "Brand operators" groups may see who waits for their sold-out variants (the stock
alerts admin). storefront.demo grants the same to new demo groups."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "Brand operators"


def grant(apps, schema_editor):
    catalog = apps.get_app_config("catalog")
    catalog.models_module = True
    create_permissions(catalog, verbosity=0, apps=apps)
    catalog.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permissions = Permission.objects.filter(
        content_type__app_label="catalog", codename="view_stockalert"
    )
    for group in Group.objects.filter(name=GROUP):
        group.permissions.add(*permissions)


class Migration(migrations.Migration):
    dependencies = [
        ("storefront", "0003_info_pages"),
        ("catalog", "0008_stock_alerts_and_option_images"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
