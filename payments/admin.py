from django.contrib import admin, messages

from accounts.admin_access import SuperuserOnlyAdminMixin
from payments.models import Payment, Refund, RefundStatus, SavedCard, WebhookEvent
from payments.services import PaymentError, refund_abandon, refund_retry


class RefundInline(SuperuserOnlyAdminMixin, admin.TabularInline):
    model = Refund
    extra = 0
    can_delete = False
    fields = ["amount", "status", "failure_message", "reason", "created_by", "created_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Refund)
class RefundAdmin(SuperuserOnlyAdminMixin, admin.ModelAdmin):
    """Every refund, and the failed ones still being retried: retry now, or abandon one that
    was settled another way (it is then no longer reserved on its payment)."""

    list_display = ["payment", "amount", "status", "attempts", "next_attempt_at", "created_at"]
    list_filter = ["status"]
    search_fields = ["payment__reference", "idempotency_key", "provider_ref"]
    readonly_fields = [f.name for f in Refund._meta.fields]
    actions = ["retry_now", "abandon"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Retry the selected failed refunds now")
    def retry_now(self, request, queryset):
        results = [refund_retry(refund=r) for r in queryset.filter(status=RefundStatus.FAILED)]
        done = sum(r.status == RefundStatus.SUCCEEDED for r in results)
        self.message_user(request, f"{done} of {len(results)} refunds went through.")

    @admin.action(description="Abandon the selected failed refunds (settled another way)")
    def abandon(self, request, queryset):
        count = 0
        for refund in queryset.filter(status=RefundStatus.FAILED):
            try:
                refund_abandon(refund=refund, actor=request.user)
            except PaymentError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                count += 1
        self.message_user(request, f"{count} refunds abandoned.")


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
        "amount_refund_pending",
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
