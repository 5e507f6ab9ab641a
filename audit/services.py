import json
from collections.abc import Collection
from decimal import Decimal

from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import DecimalField, Model

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


def audit_snapshot(obj: Model, fields: Collection[str]) -> dict:
    """The stored values of `fields` (attribute names: `voucher_id`, not `voucher`) of `obj`,
    read before it changes; {} for a row not saved yet."""
    if obj.pk is None or obj._state.adding:
        return {}
    return type(obj)._default_manager.filter(pk=obj.pk).values(*fields).first() or {}


def _stored(obj: Model, name: str):
    # A form's Decimal("10") is stored as 10.00: compare it as the column gives it back.
    value, field = getattr(obj, name), obj._meta.get_field(name)
    if isinstance(field, DecimalField) and isinstance(value, Decimal):
        return value.quantize(Decimal(1).scaleb(-field.decimal_places))
    return value


def audit_change(
    *,
    actor,
    action: str,
    obj: Model,
    brand_id: int | None,
    fields: Collection[str],
    before: dict,
    note: str = "",
    parent: Model | None = None,
) -> AuditEntry | None:
    """Record the fields of `obj` that differ from `before` (its `audit_snapshot`), with their
    old and new values; a new row (`before` empty) records all of them. Nothing changed:
    no entry."""
    old = _plain(before)
    new = _plain({name: _stored(obj, name) for name in fields})
    changed = [name for name in fields if not old or old.get(name) != new[name]]
    if not changed:
        return None
    return audit_record(
        actor=actor,
        action=action,
        obj=obj,
        brand_id=brand_id,
        before={name: old[name] for name in changed if name in old},
        after={name: new[name] for name in changed},
        note=note,
        parent=parent,
    )


@transaction.atomic
def audited_save(
    *,
    obj: Model,
    actor,
    brand_id: int | None,
    fields: Collection[str],
    parent: Model | None = None,
) -> Model:
    """An operator's create or edit of a row that has no other rule than its form: save it
    and record the `fields` it changed as `<model>.create` or `<model>.edit`."""
    action = f"{obj._meta.model_name}.{'create' if obj._state.adding else 'edit'}"
    before = audit_snapshot(obj, fields)
    obj.save()
    audit_change(
        actor=actor,
        action=action,
        obj=obj,
        brand_id=brand_id,
        fields=fields,
        before=before,
        parent=parent,
    )
    return obj


@transaction.atomic
def audited_delete(
    *,
    obj: Model,
    actor,
    brand_id: int | None,
    fields: Collection[str],
    parent: Model | None = None,
) -> None:
    """An operator's delete of such a row; the entry (`<model>.delete`) keeps what it was."""
    audit_record(
        actor=actor,
        action=f"{obj._meta.model_name}.delete",
        obj=obj,
        brand_id=brand_id,
        before=audit_snapshot(obj, fields),
        parent=parent,
    )
    obj.delete()
