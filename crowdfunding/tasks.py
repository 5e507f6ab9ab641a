"""Crowdfunding tasks: take ids, call one service, safe to run twice."""

from config.celery import house_task


@house_task(acks_late=True)
def campaigns_close_due_task() -> None:
    """Beat, every minute: close the live campaigns past their deadline."""
    from crowdfunding.services import campaigns_close_due

    campaigns_close_due()


@house_task(acks_late=True)
def pledge_sweeps() -> None:
    """Beat: reminders and the end of the fix-payment window."""
    from crowdfunding.services import pledges_grace_sweep

    pledges_grace_sweep()
