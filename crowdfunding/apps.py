from django.apps import AppConfig


class CrowdfundingConfig(AppConfig):
    name = "crowdfunding"
    verbose_name = "Crowdfunding"

    def ready(self) -> None:
        from crowdfunding.selectors import pledge_card_uses
        from crowdfunding.services import pledge_payment_changed
        from crowdfunding.settlement import PledgeBook
        from payments.listeners import card_use_register, payment_listener_register
        from payments.settlement import settlement_book_register

        payment_listener_register("pledge", pledge_payment_changed)
        settlement_book_register(PledgeBook())
        card_use_register(pledge_card_uses)
