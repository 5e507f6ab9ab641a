from decimal import Decimal, InvalidOperation

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from import_export import fields, resources
from import_export.admin import ExportMixin

from catalog.admin_scoping import BrandScopedAdmin, BrandScopedInline
from orders.models import Order, OrderEvent, OrderLine, OrderStatus
from orders.services import order_cancel, order_mark_delivered, order_refund, order_ship
from payments.services import PaymentError


class OrderResource(resources.ModelResource):
    customer = fields.Field(attribute="email", column_name="customer")

    class Meta:
        model = Order
        fields = [
            "number",
            "customer",
            "status",
            "currency",
            "subtotal",
            "shipping_cost",
            "total",
            "amount_refunded",
            "ship_name",
            "ship_city",
            "ship_country",
            "tracking_number",
            "created_at",
            "paid_at",
            "shipped_at",
        ]
        export_order = fields


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
    ]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class OrderEventInline(BrandScopedInline, admin.TabularInline):
    model = OrderEvent
    extra = 0
    can_delete = False
    fields = ["created_at", "actor", "from_status", "to_status", "note"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Order)
class OrderAdmin(ExportMixin, BrandScopedAdmin):
    """Orders holding the operator's products. Changes go through the buttons on the order
    (ship, delivered, refund, cancel), each a service with its state check; the fields are
    read-only."""

    resource_classes = [OrderResource]
    list_display = ["number", "email", "status", "total", "currency", "created_at", "paid_at"]
    list_filter = ["status", "shipping_method"]
    search_fields = ["number", "email", "ship_name", "tracking_number"]
    date_hierarchy = "created_at"
    inlines = [OrderLineInline, OrderEventInline]
    change_form_template = "admin/orders/order/change_form.html"
    readonly_fields = [f.name for f in Order._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        return [
            path(
                "<int:pk>/operate/<str:operation>/",
                self.admin_site.admin_view(self.operate_view),
                name="orders_order_operate",
            ),
            *super().get_urls(),
        ]

    def operate_view(self, request, pk: int, operation: str):
        order = get_object_or_404(self.get_queryset(request), pk=pk)
        if not self.has_change_permission(request, order):
            raise PermissionDenied
        if operation not in {"ship", "deliver", "refund", "cancel"}:
            raise PermissionDenied
        change_url = reverse("admin:orders_order_change", args=[order.pk])
        if request.method == "POST":
            try:
                if operation == "ship":
                    order_ship(
                        order=order,
                        tracking_number=request.POST.get("tracking_number", ""),
                        actor=request.user,
                    )
                elif operation == "deliver":
                    order_mark_delivered(order=order, actor=request.user)
                elif operation == "refund":
                    try:
                        amount = Decimal(request.POST.get("amount", "")).quantize(Decimal("0.01"))
                    except InvalidOperation as exc:
                        raise ValidationError("Enter the amount to refund, e.g. 12.50.") from exc
                    order_refund(
                        order=order,
                        amount=amount,
                        actor=request.user,
                        reason=request.POST.get("reason", ""),
                    )
                else:
                    order_cancel(
                        order=order, actor=request.user, reason=request.POST.get("reason", "")
                    )
            except (ValidationError, PaymentError) as exc:
                message = " ".join(getattr(exc, "messages", [str(exc)]))
                self.message_user(request, message, messages.ERROR)
            else:
                self.message_user(
                    request, f"Order {order.number}: {operation} done.", messages.SUCCESS
                )
                return redirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "order": order,
            "operation": operation,
            "opts": self.opts,
            "change_url": change_url,
            "refundable": order.total - order.amount_refunded,
            "title": f"{operation.title()} order {order.number}",
        }
        return TemplateResponse(request, "admin/orders/order/operate.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        order = self.get_object(request, object_id)
        if order is not None:
            allowed = {
                "ship": order.status == OrderStatus.PAID,
                "deliver": order.status == OrderStatus.SHIPPED,
                "refund": order.status
                in (OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.DELIVERED),
                "cancel": order.status in (OrderStatus.PENDING_PAYMENT, OrderStatus.PAID),
            }
            extra_context = {
                **(extra_context or {}),
                # Every field is read-only: changes go through the operations above.
                "show_save": False,
                "show_save_and_continue": False,
                "show_save_and_add_another": False,
                "operations": [
                    (name, reverse("admin:orders_order_operate", args=[order.pk, name]))
                    for name, ok in allowed.items()
                    if ok
                ],
            }
        return super().change_view(request, object_id, form_url, extra_context)
