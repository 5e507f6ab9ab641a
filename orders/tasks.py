from config.celery import house_task


@house_task(acks_late=True)
def stock_holds_expire() -> None:
    from orders.services import stock_holds_expire as sweep

    sweep()


@house_task(acks_late=True)
def order_refunds_resume() -> None:
    """Refunds of order parts whose process died before asking the provider."""
    from orders.fulfilment import order_refunds_resume as sweep

    sweep()
