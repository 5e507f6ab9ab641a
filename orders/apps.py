from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        from catalog.exports import export_register
        from orders.exports import orders_export
        from orders.services import order_payment_changed
        from payments.listeners import payment_listener_register

        payment_listener_register("order", order_payment_changed)
        export_register("orders.orders", orders_export)
