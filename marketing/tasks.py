from config.celery import house_task


@house_task(acks_late=True)
def voucher_unpaid_orders_cancel() -> None:
    """Unpaid orders holding a voucher use past their time: cancelled, the use given back."""
    from marketing.vouchers import voucher_unpaid_orders_cancel as sweep

    sweep()
