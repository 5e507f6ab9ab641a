"""Indexes that only cost writes (thousands per settlement chunk): the order number's
varchar_pattern_ops copy of its unique index (only `LIKE 'prefix%'` would use it; numbers
are looked up whole and the admin searches with `icontains`), and the lone user index, which
orders_user_recent (user, -created_at) starts with."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0005_refund_collect_lease"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name="order",
            name="user",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="orders",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.RunSQL(
            sql="DROP INDEX IF EXISTS orders_order_number_abc9e0f2_like",
            reverse_sql="CREATE INDEX IF NOT EXISTS orders_order_number_abc9e0f2_like"
            " ON orders_order (number varchar_pattern_ops)",
        ),
    ]
