"""Drop the varchar_pattern_ops copies Django makes beside the indexes of text columns: they
serve only `LIKE 'prefix%'` lookups, which nothing does on these columns (the admin's search
is `icontains`, which no btree serves), and each one costs every settlement an extra index
write per payment and per local charge. The plain and unique indexes stay."""

from django.db import migrations

PATTERN_INDEXES = {
    "payments_payment_idempotency_key_d254539e_like": ("payments_payment", "idempotency_key"),
    "payments_payment_provider_ref_d305c2fd_like": ("payments_payment", "provider_ref"),
    "payments_payment_reference_1d502039_like": ("payments_payment", "reference"),
    "payments_localcharge_charge_id_c6c63556_like": ("payments_localcharge", "charge_id"),
    "payments_localcharge_idempotency_key_727ffbff_like": (
        "payments_localcharge",
        "idempotency_key",
    ),
}


class Migration(migrations.Migration):
    dependencies = [("payments", "0002_refund_states_charge_in_flight")]

    operations = [
        migrations.RunSQL(
            sql=f"DROP INDEX IF EXISTS {name}",
            reverse_sql=f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({column} varchar_pattern_ops)",
        )
        for name, (table, column) in PATTERN_INDEXES.items()
    ]
