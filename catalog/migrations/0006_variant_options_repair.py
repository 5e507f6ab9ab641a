"""Variant options stored before they were validated as an object of text (a CSV import
took `["Red"]`): made into one, so the pages that list options read them again."""

from django.db import migrations


def _as_map(value) -> dict[str, str]:
    if isinstance(value, dict):
        return {str(k).strip() or "option": "" if v is None else str(v) for k, v in value.items()}
    if isinstance(value, list):
        return {f"option {n}": str(v) for n, v in enumerate(value, start=1)}
    return {} if value in (None, "") else {"option": str(value)}


def repair(apps, schema_editor):
    Variant = apps.get_model("catalog", "Variant")
    for variant in Variant.objects.only("pk", "options").iterator():
        fixed = _as_map(variant.options)
        if fixed != variant.options:
            Variant.objects.filter(pk=variant.pk).update(options=fixed)


class Migration(migrations.Migration):
    dependencies = [("catalog", "0005_variant_input_checks")]

    operations = [migrations.RunPython(repair, migrations.RunPython.noop)]
