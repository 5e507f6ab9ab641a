from django.conf import settings
from django.db import models
from django.db.models import Q


class NotificationKind(models.TextChoices):
    REPLY = "reply", "Replies to my posts and comments"
    MENTION = "mention", "Mentions of me"
    LIKE = "like", "Likes of my posts"
    JOIN_APPROVED = "join_approved", "Community join requests approved"
    BADGE = "badge", "Badges I earn"
    ANNOUNCEMENT = "announcement", "Brand announcements in my communities"
    ORDER = "order", "My orders"
    PREORDER = "preorder", "My pre-orders"
    CAMPAIGN = "campaign", "Campaigns I back"
    BACK_IN_STOCK = "back_in_stock", "Products I asked to hear about are back"


# (in the notification centre, by email) unless the user chose otherwise. Order and
# pre-order mails are sent anyway as transactional mail, so no second email for those.
DEFAULT_CHANNELS: dict[str, tuple[bool, bool]] = {
    NotificationKind.REPLY: (True, True),
    NotificationKind.MENTION: (True, True),
    NotificationKind.LIKE: (True, False),
    NotificationKind.JOIN_APPROVED: (True, True),
    NotificationKind.BADGE: (True, False),
    NotificationKind.ANNOUNCEMENT: (True, False),
    NotificationKind.ORDER: (True, False),
    NotificationKind.PREORDER: (True, False),
    NotificationKind.BACK_IN_STOCK: (True, False),  # its own mail is sent anyway
    NotificationKind.CAMPAIGN: (True, False),
}


class Notification(models.Model):
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=20, choices=NotificationKind.choices)
    title = models.CharField(max_length=200)
    body = models.CharField(max_length=500, blank=True)
    url = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["recipient", "-created_at"], name="notifications_recent"),
            models.Index(
                fields=["recipient"], name="notifications_unread", condition=Q(read_at__isnull=True)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} for {self.recipient_id}: {self.title}"


class NotificationPreference(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preferences"
    )
    kind = models.CharField(max_length=20, choices=NotificationKind.choices)
    in_app = models.BooleanField(default=True)
    email = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "kind"], name="notifications_one_preference_per_kind"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.kind}: app={self.in_app} email={self.email}"


class OutboxEmail(models.Model):
    """A rendered email, written in the transaction of what it tells, and sent after the
    commit by a worker. A broker that is down at the commit loses nothing: the sweep sends
    what is still unsent (notifications.services.emails_outbox_flush)."""

    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["created_at"], name="notifications_outbox_unsent", condition=Q(sent_at=None)
            )
        ]

    def __str__(self) -> str:
        return f"{self.payload.get('subject', '')} to {', '.join(self.payload.get('to', []))}"
