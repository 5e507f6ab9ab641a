"""Existing "Brand operators" groups may run their brands' campaigns in the admin (scoped to
their brands). storefront.demo grants the same to new demo groups."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "Brand operators"
CODENAMES = [
    *(
        f"{action}_{model}"
        for action in ("view", "add", "change", "delete")
        for model in ("campaign", "rewardtier", "stretchgoal", "campaignupdate")
    ),
    "view_pledge",
    "view_rewardticket",
    "change_rewardticket",
    "view_campaigncomment",
    "change_campaigncomment",
    "view_commentreport",
    "view_campaignevent",
]


def grant(apps, schema_editor):
    app = apps.get_app_config("crowdfunding")
    app.models_module = True
    create_permissions(app, verbosity=0, apps=apps)
    app.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permissions = Permission.objects.filter(
        content_type__app_label="crowdfunding", codename__in=CODENAMES
    )
    for group in Group.objects.filter(name=GROUP):
        group.permissions.add(*permissions)


class Migration(migrations.Migration):
    dependencies = [("crowdfunding", "0001_initial")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
