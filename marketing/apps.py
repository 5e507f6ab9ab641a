from django.apps import AppConfig


class MarketingConfig(AppConfig):
    name = "marketing"
    verbose_name = "Vouchers and placements"

    def ready(self) -> None:
        from catalog.exports import export_register
        from marketing.targets import targets_register_defaults
        from marketing.vouchers import VoucherAdjuster, voucher_codes_export, voucher_order_voided
        from orders.adjusters import price_adjuster_register
        from orders.listeners import order_voided_register

        price_adjuster_register(VoucherAdjuster())
        order_voided_register(voucher_order_voided)
        targets_register_defaults()
        export_register("marketing.voucher_codes", voucher_codes_export)
