import json

from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Model

from audit.models import AuditEntry


def _plain(values: dict | None) -> dict:
    # Decimals, dates and UUIDs as the JSON column will give them back (strings).
    return json.loads(json.dumps(values or {}, cls=DjangoJSONEncoder))


def audit_record(
    *,
    actor,
    action: str,
    obj: Model,
    brand_id: int | None,
    before: dict | None = None,
    after: dict | None = None,
    note: str = "",
    parent: Model | None = None,
) -> AuditEntry:
    """Append one entry: who (`actor`, a user or None for the system) did `action` to `obj`
    of brand `brand_id`, and the fields it changed, `before` and `after`. Call it inside the
    transaction of the change, so the entry exists exactly when the change does."""
    entry = AuditEntry(
        actor=actor if getattr(actor, "pk", None) else None,
        actor_label=(getattr(actor, "email", "") or "system")[:255],
        brand_id=brand_id,
        action=action[:40],
        content_type=ContentType.objects.get_for_model(obj, for_concrete_model=False),
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        before=_plain(before),
        after=_plain(after),
        note=note[:300],
    )
    if parent is not None:
        entry.parent_content_type = ContentType.objects.get_for_model(parent)
        entry.parent_object_id = str(parent.pk)
    entry.full_clean()
    entry.save()
    return entry
