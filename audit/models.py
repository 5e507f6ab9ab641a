"""The audit log: one append-only row per operator action that changes money, stock, state
or access. A leaf app: it knows rows by content type and id, and brands and users by key;
it imports none of our apps. Postgres refuses UPDATE and DELETE on the table (a trigger,
audit/migrations/0002), and its admin allows nobody to add, change or delete."""

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone


class AuditEntry(models.Model):
    # How the admin scoping finds the brand of a row (catalog.admin_scoping).
    brand_lookup = "brand"

    created_at = models.DateTimeField(default=timezone.now, db_index=True, editable=False)
    # No database constraints: the history outlives the users, brands and rows it names.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_label = models.CharField(max_length=255, blank=True)
    brand = models.ForeignKey(
        "catalog.Brand",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    action = models.CharField(max_length=40, db_index=True)
    content_type = models.ForeignKey(
        ContentType, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=200)
    # The row this one belongs to (a variant's product), whose history shows it too.
    parent_content_type = models.ForeignKey(
        ContentType,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    parent_object_id = models.CharField(max_length=64, blank=True)
    before = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    after = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [
            models.Index(fields=["content_type", "object_id"], name="audit_entry_object"),
            models.Index(
                fields=["parent_content_type", "parent_object_id"], name="audit_entry_parent"
            ),
            models.Index(fields=["brand", "-created_at"], name="audit_entry_brand"),
        ]

    def __str__(self) -> str:
        return f"{self.action} · {self.object_repr}"

    def changes(self) -> list[tuple[str, object, object]]:
        """(field, before, after) for every field either side names."""
        names = list(dict.fromkeys([*self.before, *self.after]))
        return [(name, self.before.get(name), self.after.get(name)) for name in names]
