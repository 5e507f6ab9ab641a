from django.apps import AppConfig


class CrowdfundingConfig(AppConfig):
    name = "crowdfunding"
    verbose_name = "Crowdfunding"

    def ready(self) -> None:
        from catalog.exports import export_register
        from crowdfunding.book import PLEDGE_BOOK
        from crowdfunding.selectors import fulfilment_export, pledge_card_uses
        from payments.commitments.book import commitment_book_register
        from payments.listeners import card_use_register

        # Also the payment listeners of "pledge:" and "pledge-deposit:" (the engine's).
        commitment_book_register(PLEDGE_BOOK)
        card_use_register(pledge_card_uses)
        export_register("crowdfunding.fulfilment", fulfilment_export)
