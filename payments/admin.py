from django.contrib import admin

from accounts.admin_access import SuperuserOnlyAdminMixin
from payments.models import Payment, Refund, SavedCard, WebhookEvent


class RefundInline(SuperuserOnlyAdminMixin, admin.TabularInline):
    model = Refund
    extra = 0
    readonly_fields = ["amount", "provider_ref", "reason", "created_by", "created_at"]


@admin.register(Payment)
class PaymentAdmin(SuperuserOnlyAdminMixin, admin.ModelAdmin):
    """Payments span brands (one order, several brands): superusers only; operators refund
    through their orders."""

    list_display = [
        "reference",
        "provider",
        "amount",
        "currency",
        "status",
        "amount_refunded",
        "created_at",
    ]
    list_filter = ["provider", "status"]
    search_fields = ["reference", "provider_ref", "idempotency_key"]
    readonly_fields = [f.name for f in Payment._meta.fields]
    inlines = [RefundInline]


@admin.register(SavedCard)
class SavedCardAdmin(SuperuserOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["user", "brand", "last4", "exp_month", "exp_year", "provider", "deleted_at"]
    readonly_fields = [f.name for f in SavedCard._meta.fields]


@admin.register(WebhookEvent)
class WebhookEventAdmin(SuperuserOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["provider", "type", "event_id", "received_at"]
    list_filter = ["provider", "type"]
    readonly_fields = [f.name for f in WebhookEvent._meta.fields]
