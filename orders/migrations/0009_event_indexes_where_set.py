"""An order event's part and actor are empty for most rows (an order's own event; a change
nobody made, as every settled order's first): their indexes hold the rows where they are set,
all that a lookup by part or actor (a cascade, a user deleted) reads, and a settlement chunk
writes two index entries fewer per order."""


import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('orders', '0008_drop_covered_indexes'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name='orderevent',
            name='actor',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='orderevent',
            name='part',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='events', to='orders.orderpart'),
        ),
        migrations.AddIndex(
            model_name='orderevent',
            index=models.Index(condition=models.Q(('part__isnull', False)), fields=['part'], name='orders_event_part'),
        ),
        migrations.AddIndex(
            model_name='orderevent',
            index=models.Index(condition=models.Q(('actor__isnull', False)), fields=['actor'], name='orders_event_actor'),
        ),
    ]
