from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0002_order_paid_through"),
    ]

    operations = [
        migrations.AddField(
            model_name="cart",
            name="revision",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="order",
            name="checkout_key",
            field=models.CharField(
                blank=True, editable=False, max_length=40, null=True, unique=True
            ),
        ),
    ]
