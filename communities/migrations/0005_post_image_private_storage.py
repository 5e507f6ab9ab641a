"""Post images move to their own storage, outside /media/ (communities.media): the files
stored before are moved there, so their old public URLs find nothing."""

from django.core.files.storage import storages
from django.db import migrations, models

import communities.media


def move_post_images(apps, schema_editor) -> None:
    source, target = storages["default"], communities.media.post_image_storage()
    if source is target:  # no separate storage configured (tests): nothing to move
        return
    Post = apps.get_model("communities", "Post")
    for name in Post.objects.exclude(image="").values_list("image", flat=True).iterator():
        if not source.exists(name):
            continue
        if not target.exists(name):
            with source.open(name, "rb") as content:
                saved = target.save(name, content)
            if saved != name:  # the names are random: a clash means a half-done earlier run
                target.delete(saved)
                continue
        source.delete(name)


class Migration(migrations.Migration):
    dependencies = [
        ("communities", "0004_ideas_invites"),
    ]

    operations = [
        migrations.AlterField(
            model_name="post",
            name="image",
            field=models.ImageField(
                blank=True,
                storage=communities.media.post_image_storage,
                upload_to="communities/posts/",
            ),
        ),
        migrations.RunPython(move_post_images, migrations.RunPython.noop, elidable=True),
    ]
