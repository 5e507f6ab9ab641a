"""Indexes a settlement chunk writes thousands of entries into, that no query needs: the
order's own index on an order part and on an order payment link (their unique constraints,
(order, brand) and (order, reference), start with the order and serve those lookups), and
the varchar_pattern_ops copies of the checkout key's and the payment link reference's
indexes (only `LIKE 'prefix%'` would use them; both are looked up whole)."""

import django.db.models.deletion
from django.db import migrations, models

_LIKE_INDEXES = {
    "orders_order_checkout_key_6b5fab4b_like": "orders_order (checkout_key varchar_pattern_ops)",
    "orders_orderpayment_reference_0305c650_like": (
        "orders_orderpayment (reference varchar_pattern_ops)"
    ),
}


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0007_discounts"),
    ]

    operations = [
        migrations.AlterField(
            model_name="orderpart",
            name="order",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="parts",
                to="orders.order",
            ),
        ),
        migrations.AlterField(
            model_name="orderpayment",
            name="order",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="payment_links",
                to="orders.order",
            ),
        ),
        *(
            migrations.RunSQL(
                sql=f"DROP INDEX IF EXISTS {name}",
                reverse_sql=f"CREATE INDEX IF NOT EXISTS {name} ON {target}",
            )
            for name, target in _LIKE_INDEXES.items()
        ),
    ]
