from django.db import migrations

COMMUNITY_TEXTS = "SELECT name || ' ' || coalesce(description, '') FROM communities_community"
POST_TEXTS = "SELECT title || ' ' || body FROM communities_post WHERE deleted_at IS NULL"


def fill(apps, schema_editor):
    # Raw SQL on the tables as this migration finds them (catalog.search_words).
    from catalog.search_words import search_words_from_sql

    search_words_from_sql(sql=COMMUNITY_TEXTS)
    search_words_from_sql(sql=POST_TEXTS)


class Migration(migrations.Migration):
    dependencies = [
        ("communities", "0005_post_image_private_storage"),
        ("catalog", "0010_search_words"),
    ]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
