from django.contrib.contenttypes.models import ContentType
from django.db.models import Model, Q, QuerySet

from audit.models import AuditEntry


def audit_entries_visible(*, user) -> QuerySet[AuditEntry]:
    """Entries of the brands `user` operates (every entry for a superuser)."""
    entries = AuditEntry.objects.select_related("content_type")
    if user.is_superuser:
        return entries
    if not (user.is_active and user.is_staff):
        return entries.none()
    return entries.filter(brand__operators=user)


def audit_entries_of(*, obj: Model, user, limit: int = 200) -> list[AuditEntry]:
    """The history of `obj` (and of the rows that belong to it) that `user` may see: one
    query. On a shared order an operator sees their own brand's entries only."""
    content_type = ContentType.objects.get_for_model(obj)
    key = str(obj.pk)
    return list(
        audit_entries_visible(user=user).filter(
            Q(content_type=content_type, object_id=key)
            | Q(parent_content_type=content_type, parent_object_id=key)
        )[:limit]
    )
