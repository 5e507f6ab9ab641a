"""The search GIN indexes without a pending list (fastupdate off), altered in place: a
rebuild would lock the catalogue for the time it takes at scale. The pending list already
there is merged into the index first."""

import django.contrib.postgres.indexes
from django.db import migrations

INDEXES = ["catalog_product_search", "catalog_product_trgm", "catalog_searchword_deletes"]


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0012_export_jobs"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    sql=[
                        f"ALTER INDEX {name} SET (fastupdate = off); "
                        f"SELECT gin_clean_pending_list('{name}'::regclass);"
                        for name in INDEXES
                    ],
                    reverse_sql=[f"ALTER INDEX {name} RESET (fastupdate);" for name in INDEXES],
                )
            ],
            state_operations=[
                migrations.RemoveIndex(model_name="product", name="catalog_product_search"),
                migrations.RemoveIndex(model_name="product", name="catalog_product_trgm"),
                migrations.RemoveIndex(model_name="searchword", name="catalog_searchword_deletes"),
                migrations.AddIndex(
                    model_name="product",
                    index=django.contrib.postgres.indexes.GinIndex(
                        fastupdate=False, fields=["search_vector"], name="catalog_product_search"
                    ),
                ),
                migrations.AddIndex(
                    model_name="product",
                    index=django.contrib.postgres.indexes.GinIndex(
                        fastupdate=False,
                        fields=["search_text"],
                        name="catalog_product_trgm",
                        opclasses=["gin_trgm_ops"],
                    ),
                ),
                migrations.AddIndex(
                    model_name="searchword",
                    index=django.contrib.postgres.indexes.GinIndex(
                        fastupdate=False, fields=["deletes"], name="catalog_searchword_deletes"
                    ),
                ),
            ],
        ),
    ]
