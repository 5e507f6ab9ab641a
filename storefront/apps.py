from django.apps import AppConfig


class StorefrontConfig(AppConfig):
    name = "storefront"
    verbose_name = "Storefront"

    def ready(self) -> None:
        from orders.listeners import order_paid_register, order_refunded_register
        from storefront.placements import placements_register
        from storefront.purchase_honour import (
            order_paid_award_points,
            order_refund_take_back_points,
        )

        order_paid_register(order_paid_award_points)
        placements_register()
        order_refunded_register(order_refund_take_back_points)
