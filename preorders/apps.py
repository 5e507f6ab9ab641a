from django.apps import AppConfig


class PreordersConfig(AppConfig):
    name = "preorders"
    verbose_name = "Pre-orders"

    def ready(self) -> None:
        from catalog.exports import export_register
        from payments.commitments.book import commitment_book_register
        from payments.listeners import card_use_register
        from preorders.reports import production_export, reservations_export
        from preorders.selectors import reservation_card_uses
        from preorders.settlement import ReservationBook

        commitment_book_register(ReservationBook())
        card_use_register(reservation_card_uses)
        export_register("preorders.reservations", reservations_export)
        export_register("preorders.production", production_export)
