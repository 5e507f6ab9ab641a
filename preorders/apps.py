from django.apps import AppConfig


class PreordersConfig(AppConfig):
    name = "preorders"
    verbose_name = "Pre-orders"

    def ready(self) -> None:
        from payments.listeners import card_use_register, payment_listener_register
        from payments.settlement import settlement_book_register
        from preorders.selectors import reservation_card_uses
        from preorders.services import reservation_deposit_changed, reservation_payment_changed
        from preorders.settlement import ReservationBook

        payment_listener_register("preorder-res", reservation_payment_changed)
        payment_listener_register("preorder-deposit", reservation_deposit_changed)
        settlement_book_register(ReservationBook())
        card_use_register(reservation_card_uses)
