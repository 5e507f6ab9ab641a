import uuid

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import DecimalField, OuterRef, Q, Subquery, Sum
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from catalog.admin_exports import export_selection
from catalog.admin_scoping import (
    BrandScopedAdmin,
    BrandScopedInline,
    as_text_for_operators,
    related_as_text,
    scope_queryset,
)
from formatting.formats import money
from orders.fulfilment import (
    order_cancel,
    order_part_cancel,
    order_part_mark_delivered,
    order_part_refund,
    order_part_ship,
    part_refund_pending,
    part_refundable,
)
from orders.models import (
    PART_MACHINE,
    Order,
    OrderEvent,
    OrderLine,
    OrderPart,
    OrderRefund,
    OrderStatus,
    RefundState,
)
from payments.services import PaymentError

# Whole-order money: an operator sees their parts' shares instead (they hold other brands').
ORDER_MONEY_FIELDS = {
    "subtotal",
    "shipping_cost",
    "discount",
    "total",
    "amount_refunded",
    "paid_through",
}
# A part's operations are its state machine's actions (orders.models.PART_MACHINE).
PART_OPERATIONS = {action.name: action.label for action in PART_MACHINE.actions}


class OrderPartInline(BrandScopedInline, admin.TabularInline):
    model = OrderPart
    extra = 0
    can_delete = False
    fields = [
        "brand",
        "status",
        "subtotal",
        "shipping_share",
        "discount",
        "total",
        "amount_refunded",
        "pending_refund",
        "tracking_number",
        "shipped_at",
        "delivered_at",
    ]
    readonly_fields = fields

    @admin.display(description="refund pending at the provider")
    def pending_refund(self, part: OrderPart):
        return part_refund_pending(part) or "—"

    def has_add_permission(self, request, obj=None):
        return False


class OrderLineInline(BrandScopedInline, admin.TabularInline):
    model = OrderLine
    extra = 0
    can_delete = False
    fields = [
        "product_name",
        "variant_label",
        "sku",
        "brand",
        "unit_price",
        "quantity",
        "line_total",
        "discount",
        "quantity_refunded",
        "quantity_restocked",
    ]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class OrderRefundInline(BrandScopedInline, admin.TabularInline):
    model = OrderRefund
    extra = 0
    can_delete = False
    fields = ["created_at", "part", "amount", "status", "lines", "restock", "actor", "reason"]
    readonly_fields = fields
    actor_text = related_as_text("actor", "actor")

    def get_fields(self, request, obj=None):
        return as_text_for_operators(request, self.fields, ["actor"])

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)

    def has_add_permission(self, request, obj=None):
        return False


class OrderEventInline(BrandScopedInline, admin.TabularInline):
    model = OrderEvent
    extra = 0
    can_delete = False
    fields = ["created_at", "part", "actor", "from_status", "to_status", "note"]
    readonly_fields = fields
    actor_text = related_as_text("actor", "actor")

    def get_fields(self, request, obj=None):
        return as_text_for_operators(request, self.fields, ["actor"])

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)

    def get_queryset(self, request):
        # The operator's parts' events, not other brands'.
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        # The order's own notes speak of the whole order (its total), so only its creation.
        return queryset.filter(
            Q(part=None, from_status="") | Q(part__brand__operators=request.user)
        ).distinct()

    def has_add_permission(self, request, obj=None):
        return False


def _parts_of(request, order: Order):
    return scope_queryset(OrderPart.objects.filter(order=order), request).select_related("brand")


def _allowed(part: OrderPart) -> dict[str, bool]:
    """Which buttons the part shows: what its state machine allows from its state now."""
    allowed = {action.name for action in PART_MACHINE.allowed_actions(part)}
    return {name: name in allowed for name in PART_OPERATIONS}


@admin.register(Order)
class OrderAdmin(BrandScopedAdmin):
    """Orders holding a part of the operator's brands. An operator sees and acts on their
    parts only (ship, delivered, refund by line, cancel: each a service with its state check
    on orders.fulfilment); a superuser sees and acts on every part."""

    list_display = ["number", "email", "status", "order_total", "created_at", "paid_at"]
    list_filter = ["status", "shipping_method"]
    search_fields = ["number", "email", "ship_name", "tracking_number"]
    date_hierarchy = "created_at"
    inlines = [OrderPartInline, OrderLineInline, OrderRefundInline, OrderEventInline]
    change_form_template = "admin/orders/order/change_form.html"
    actions = ["export_csv"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Export selected orders to CSV", permissions=["view"])
    def export_csv(self, request, queryset):
        """A worker writes the file: a job per brand of the selected orders' parts (the
        operator's own parts only), offered on the exports page when it is ready."""
        parts = scope_queryset(OrderPart.objects.filter(order__in=queryset.values("pk")), request)
        return export_selection(
            self,
            request,
            rows=parts.values_list("order_id", "brand_id").order_by("order_id"),
            kind="orders.orders",
            file_name="orders.csv",
        )

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if not request.user.is_superuser:
            share = (
                OrderPart.objects.filter(order=OuterRef("pk"), brand__operators=request.user)
                .values("order")
                .annotate(total=Sum("total"))
                .values("total")
            )
            queryset = queryset.annotate(
                brand_share=Subquery(share, output_field=DecimalField(max_digits=12))
            )
        return queryset

    @admin.display(description="your share")
    def brand_share(self, order: Order):
        return money(order.brand_share, order.currency)

    @admin.display(description="total", ordering="total")
    def order_total(self, order: Order):
        return money(order.total, order.currency)

    def get_list_display(self, request):
        if request.user.is_superuser:
            return self.list_display
        return [
            "brand_share" if name == "order_total" else name
            for name in self.list_display
            if name == "order_total" or name not in ORDER_MONEY_FIELDS
        ]

    # Operators may not open the user admin: the customer shows as text, not a 403 link.
    user_text = related_as_text("user", "user")

    def get_fields(self, request, obj=None):
        names = [f.name for f in Order._meta.fields if f.name != "id"]
        if not request.user.is_superuser:
            names = [n for n in names if n not in ORDER_MONEY_FIELDS | {"tracking_number"}]
        return as_text_for_operators(request, names, ["user"])

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)

    def get_urls(self):
        return [
            path(
                "<int:pk>/operate/<str:operation>/",
                self.admin_site.admin_view(self.operate_view),
                name="orders_order_operate",
            ),
            *super().get_urls(),
        ]

    def _part(self, request, order: Order, operation: str) -> OrderPart | None:
        """The part named by ?part= / the form, among the operator's own (another brand's
        part is a 404); without one, the operator's only part that allows the operation."""
        parts = _parts_of(request, order)
        wanted = request.POST.get("part") or request.GET.get("part")
        if wanted:
            try:
                return parts.get(pk=int(wanted))
            except (ValueError, OrderPart.DoesNotExist) as exc:
                raise Http404("No such part") from exc
        candidates = [p for p in parts if _allowed(p).get(operation)] or list(parts)
        return candidates[0] if len(candidates) == 1 else None

    def operate_view(self, request, pk: int, operation: str):
        order = get_object_or_404(self.get_queryset(request), pk=pk)
        if not self.has_change_permission(request, order):
            raise PermissionDenied
        if operation not in {*PART_OPERATIONS, "cancel_order"}:
            raise PermissionDenied
        change_url = reverse("admin:orders_order_change", args=[order.pk])
        part = None
        if operation == "cancel_order":
            # An unpaid order is one payment for every part: only whoever runs every part.
            every = OrderPart.objects.filter(order=order).count()
            if order.status != OrderStatus.PENDING_PAYMENT or (
                _parts_of(request, order).count() != every
            ):
                raise PermissionDenied
        else:
            part = self._part(request, order, operation)
            if part is None:
                self.message_user(request, "Choose the part to act on.", messages.ERROR)
                return redirect(change_url)
        if request.method == "POST":
            try:
                message = self._operate(request, order, part, operation)
            except (ValidationError, PaymentError) as exc:
                text = " ".join(getattr(exc, "messages", [str(exc)]))
                self.message_user(request, text, messages.ERROR)
            else:
                level = messages.WARNING if "pending" in message else messages.SUCCESS
                self.message_user(request, message, level)
                return redirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "order": order,
            "part": part,
            "lines": list(part.lines.all()) if part else [],
            "operation": operation,
            "opts": self.opts,
            "change_url": change_url,
            "refundable": part_refundable(part) if part else None,
            "pending": part_refund_pending(part) if part else None,
            "token": uuid.uuid4().hex,
            "title": f"{PART_OPERATIONS.get(operation, 'Cancel order')} · order {order.number}"
            + (f" · {part.brand.name}" if part else ""),
        }
        return TemplateResponse(request, "admin/orders/order/operate.html", context)

    def _operate(self, request, order: Order, part: OrderPart | None, operation: str) -> str:
        post, actor = request.POST, request.user
        reason = post.get("reason", "").strip()
        if operation == "cancel_order":
            order_cancel(order=order, actor=actor, reason=reason)
            return f"Order {order.number} cancelled."
        label = f"Order {order.number}, {part.brand.name}'s part"
        if operation == "ship":
            part = order_part_ship(
                part=part, tracking_number=post.get("tracking_number", ""), actor=actor
            )
            return f"{label}: shipped, tracking number {part.tracking_number}."
        if operation == "deliver":
            order_part_mark_delivered(part=part, actor=actor)
            return f"{label}: delivered."
        if operation == "cancel":
            order_part_cancel(part=part, actor=actor, reason=reason)
            return f"{label}: cancelled, refunded and restocked." + self._pending_note(part)
        lines = {}
        for line in part.lines.all():
            raw = post.get(f"qty-{line.pk}", "").strip() or "0"
            try:
                lines[line.pk] = int(raw)
            except ValueError as exc:
                raise ValidationError(f"Enter a whole quantity for {line.product_name}.") from exc
        amount = None
        if post.get("amount", "").strip():
            # A form field refuses NaN, Infinity and more than 2 decimals (Decimal() takes them).
            field = forms.DecimalField(max_digits=12, decimal_places=2)
            try:
                amount = field.clean(post["amount"].strip())
            except ValidationError as exc:
                raise ValidationError("Enter the amount to refund, e.g. 12.50.") from exc
        refund = order_part_refund(
            part=part,
            actor=actor,
            lines=lines,
            shipping=bool(post.get("shipping")),
            amount=amount,
            restock=bool(post.get("restock")),
            reason=reason,
            key=post.get("token", ""),
        )
        pending = self._pending_note(part)
        if pending:
            return f"{label}: refund of {money(refund.amount, order.currency)} asked.{pending}"
        return f"{label}: refunded {money(refund.amount, order.currency)}."

    def _pending_note(self, part: OrderPart) -> str:
        pending = part_refund_pending(part)
        if not pending:
            return ""
        return (
            f" {money(pending, part.order.currency)} is pending at the payment provider and is"
            " retried automatically; the part shows it as pending until it goes through."
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        order = self.get_object(request, object_id)
        if order is not None:
            parts = list(_parts_of(request, order))
            several = OrderPart.objects.filter(order=order).count() > 1
            operations = []
            for part in parts:
                for name, ok in _allowed(part).items():
                    if ok:
                        url = reverse("admin:orders_order_operate", args=[order.pk, name])
                        label = PART_OPERATIONS[name]
                        if several:
                            label = f"{label} · {part.brand.name}"
                        operations.append((label, f"{url}?part={part.pk}"))
            if order.status == OrderStatus.PENDING_PAYMENT and len(parts) == (
                OrderPart.objects.filter(order=order).count()
            ):
                operations.append(
                    (
                        "Cancel order",
                        reverse("admin:orders_order_operate", args=[order.pk, "cancel_order"]),
                    )
                )
            pending = OrderRefund.objects.filter(
                part__in=parts, status=RefundState.PENDING
            ).exists()
            extra_context = {
                **(extra_context or {}),
                # Every field is read-only: changes go through the operations above.
                "show_save": False,
                "show_save_and_continue": False,
                "show_save_and_add_another": False,
                "operations": operations,
                "refund_pending": pending,
            }
        return super().change_view(request, object_id, form_url, extra_context)
