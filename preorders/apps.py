from django.apps import AppConfig


class PreordersConfig(AppConfig):
    name = "preorders"
    verbose_name = "Pre-orders"

    def ready(self) -> None:
        from payments.commitments.book import commitment_book_register
        from payments.listeners import card_use_register, payment_listener_register
        from preorders.selectors import reservation_card_uses
        from preorders.services import reservation_deposit_changed, reservation_payment_changed
        from preorders.settlement import ReservationBook

        commitment_book_register(ReservationBook())
        payment_listener_register("preorder-res", reservation_payment_changed)
        payment_listener_register("preorder-deposit", reservation_deposit_changed)
        card_use_register(reservation_card_uses)
