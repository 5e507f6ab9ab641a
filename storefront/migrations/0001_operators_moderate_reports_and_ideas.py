"""Existing "Brand operators" groups get the Reports and Ideas admin permissions (their admin
pages answered 403 without them). storefront.demo grants the same to new demo groups."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "Brand operators"
CODENAMES = ["view_report", "change_report", "view_idea", "change_idea"]


def grant(apps, schema_editor):
    # Permissions are made after migrate; on a fresh database make communities' ones now.
    communities = apps.get_app_config("communities")
    communities.models_module = True
    create_permissions(communities, verbosity=0, apps=apps)
    communities.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permissions = Permission.objects.filter(
        content_type__app_label="communities", codename__in=CODENAMES
    )
    for group in Group.objects.filter(name=GROUP):
        group.permissions.add(*permissions)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("communities", "0004_ideas_invites"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
