from config.celery import house_task


@house_task(acks_late=True)
def stock_holds_expire() -> None:
    from orders.services import stock_holds_expire as sweep

    sweep()
