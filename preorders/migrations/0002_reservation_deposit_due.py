from datetime import timedelta

from django.db import migrations, models
from django.db.models import F
from django.utils import timezone


def start_the_deposit_clock(apps, schema_editor):
    """Held reservations whose deposit is short (a card left at 3-D Secure) get the usual
    window from now, after which the units no paid deposit covers are released."""
    Reservation = apps.get_model("preorders", "Reservation")
    Reservation.objects.filter(
        status="held",
        batch__status="open",
        batch__deposit_per_unit__gt=0,
        deposit_paid__lt=F("batch__deposit_per_unit") * F("quantity") + F("deposit_refunded"),
    ).update(deposit_due_at=timezone.now() + timedelta(minutes=10))


class Migration(migrations.Migration):
    dependencies = [
        ("preorders", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="reservation",
            name="deposit_due_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddIndex(
            model_name="reservation",
            index=models.Index(
                condition=models.Q(("deposit_due_at__isnull", False), ("status", "held")),
                fields=["deposit_due_at"],
                name="preorders_res_deposit_due",
            ),
        ),
        migrations.RunPython(start_the_deposit_clock, migrations.RunPython.noop),
    ]
