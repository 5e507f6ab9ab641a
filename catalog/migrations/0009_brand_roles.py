"""Roles per brand. The plain Brand.operators table becomes BrandOperator (same table, same
rows) with a role; every existing operator becomes an owner of their brand. Brands get the
staff refund limit; invitations get their table."""

import decimal

import django.core.validators
import django.db.models.deletion
import django.db.models.functions.text
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0008_stock_alerts_and_option_images"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            # The many-to-many's own table already is this model's: only Django's state moves.
            state_operations=[
                migrations.CreateModel(
                    name="BrandOperator",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "brand",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="team",
                                to="catalog.brand",
                            ),
                        ),
                        (
                            "user",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="brand_roles",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "catalog_brand_operators",
                        "ordering": ["brand", "id"],
                        "verbose_name": "team member",
                        "unique_together": {("brand", "user")},
                    },
                ),
                migrations.AlterField(
                    model_name="brand",
                    name="operators",
                    field=models.ManyToManyField(
                        blank=True,
                        related_name="operated_brands",
                        through="catalog.BrandOperator",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            database_operations=[],
        ),
        # Existing operators are owners.
        migrations.AddField(
            model_name="brandoperator",
            name="role",
            field=models.CharField(
                choices=[("owner", "Owner"), ("staff", "Staff")], default="owner", max_length=10
            ),
        ),
        migrations.AddField(
            model_name="brandoperator",
            name="created_at",
            field=models.DateTimeField(default=django.utils.timezone.now, editable=False),
        ),
        migrations.AlterModelOptions(
            name="brandoperator",
            options={
                "ordering": ["brand", "role", "id"],
                "verbose_name": "team member",
            },
        ),
        migrations.AddField(
            model_name="brand",
            name="staff_refund_limit",
            field=models.DecimalField(
                decimal_places=2,
                default=decimal.Decimal("100.00"),
                help_text=(
                    "The largest refund the brand's staff may make at once; owners have no limit."
                ),
                max_digits=10,
                validators=[django.core.validators.MinValueValidator(decimal.Decimal("0"))],
            ),
        ),
        migrations.CreateModel(
            name="BrandInvitation",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("email", models.EmailField(max_length=254)),
                (
                    "role",
                    models.CharField(
                        choices=[("owner", "Owner"), ("staff", "Staff")],
                        default="staff",
                        max_length=10,
                    ),
                ),
                ("token", models.CharField(editable=False, max_length=64, unique=True)),
                (
                    "created_at",
                    models.DateTimeField(default=django.utils.timezone.now, editable=False),
                ),
                ("expires_at", models.DateTimeField()),
                ("accepted_at", models.DateTimeField(blank=True, null=True)),
                ("revoked_at", models.DateTimeField(blank=True, null=True)),
                (
                    "accepted_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "brand",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="invitations",
                        to="catalog.brand",
                    ),
                ),
                (
                    "invited_by",
                    models.ForeignKey(
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at", "-id"],
                "constraints": [
                    models.UniqueConstraint(
                        models.F("brand"),
                        django.db.models.functions.text.Lower("email"),
                        condition=models.Q(
                            ("accepted_at__isnull", True), ("revoked_at__isnull", True)
                        ),
                        name="catalog_invitation_one_open",
                    )
                ],
            },
        ),
    ]
