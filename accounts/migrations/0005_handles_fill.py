from django.db import migrations

from accounts.handles import HANDLE_MIN, RESERVED_HANDLES, handle_from_name


def handles_fill(apps, schema_editor):
    """Every existing member gets a handle from their display name (display names are unique
    and were already checked against staff and brand imitation), de-duplicated with a number;
    members without a name, or whose name makes no handle, get "fan-<id>". Never from the
    email address, which stays private."""
    User = apps.get_model("accounts", "User")
    taken: set[str] = set()
    for user in User.objects.order_by("pk").iterator():
        base = handle_from_name(user.display_name or "")
        handle = ""
        if len(base) >= HANDLE_MIN and base not in RESERVED_HANDLES and not base.startswith("fan-"):
            handle = base
            n = 2
            while handle in taken:
                handle = f"{base[:25]}-{n}"
                n += 1
        if not handle:
            handle = f"fan-{user.pk}"
        taken.add(handle)
        User.objects.filter(pk=user.pk).update(handle=handle)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_user_handle"),
    ]

    operations = [
        migrations.RunPython(handles_fill, migrations.RunPython.noop),
    ]
