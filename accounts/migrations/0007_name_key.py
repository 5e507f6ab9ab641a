"""Each member's name as it looks to a reader (accounts.names.name_skeleton), so that a name
that only differs by an invisible letter, a dot or a look-alike is refused as taken."""

from django.db import migrations, models


def backfill(apps, schema_editor):
    from accounts.names import name_skeleton

    User = apps.get_model("accounts", "User")
    batch = []
    for user in User.objects.exclude(display_name="").only("pk", "display_name").iterator():
        user.name_key = name_skeleton(user.display_name)[:150]
        batch.append(user)
        if len(batch) == 1000:
            User.objects.bulk_update(batch, ["name_key"])
            batch = []
    User.objects.bulk_update(batch, ["name_key"])


class Migration(migrations.Migration):
    dependencies = [("accounts", "0006_handle_unique")]

    operations = [
        migrations.AddField(
            model_name="user",
            name="name_key",
            field=models.CharField(blank=True, db_index=True, editable=False, max_length=150),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
