"""The Celery app, its beat schedule, and `house_task`, the one decorator every task uses.

Infrastructure like settings: any app may import `house_task` from here."""

import functools
import os
from collections.abc import Callable
from typing import Any

from celery import Celery, shared_task
from celery.contrib.django.task import DjangoTask
from django.db import transaction

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")


class HouseTask(DjangoTask):
    """Publishing after the commit never turns the committed change into an error page: a
    broker that is down is logged, and the work is found again by the sweep that owns it
    (the email outbox, the settlement reconciler, the stock-hold expiry, ...)."""

    def delay_on_commit(self, *args: Any, **kwargs: Any) -> None:
        transaction.on_commit(functools.partial(self.delay, *args, **kwargs), robust=True)

    def apply_async_on_commit(self, *args: Any, **kwargs: Any) -> None:
        transaction.on_commit(functools.partial(self.apply_async, *args, **kwargs), robust=True)


app = Celery("fanhub", task_cls=HouseTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.conf.imports = ("config.tasks",)

# Periodic sweeps. Feature issues add theirs here (close due batches, expire checkout holds).
app.conf.beat_schedule = {
    "beat-heartbeat": {
        "task": "config.tasks.beat_heartbeat",
        "schedule": 60.0,
    },
    "notifications-outbox-flush": {
        "task": "notifications.tasks.emails_outbox_flush_task",
        "schedule": 60.0,
    },
    "payments-recover": {
        "task": "payments.tasks.payments_recover_due",
        "schedule": 60.0,
    },
    "orders-refunds-resume": {
        "task": "orders.tasks.order_refunds_resume",
        "schedule": 300.0,
    },
    "orders-stock-holds-expire": {
        "task": "orders.tasks.stock_holds_expire",
        "schedule": 60.0,
    },
    "marketing-voucher-unpaid-orders-cancel": {
        "task": "marketing.tasks.voucher_unpaid_orders_cancel",
        "schedule": 600.0,
    },
    "preorders-close-due": {
        "task": "preorders.tasks.batches_close_due_task",
        "schedule": 60.0,
    },
    # Back-in-stock alerts (catalog.stock_alerts): one indexed query when nobody waits.
    "catalog-stock-alerts": {
        "task": "catalog.tasks.stock_alerts_sweep",
        "schedule": 60.0,
    },
    # Product page views for the operators' funnel (catalog.product_views).
    "catalog-product-views-flush": {
        "task": "catalog.tasks.product_views_flush",
        "schedule": 60.0,
    },
    # Export and import jobs (catalog.job_upkeep): fail those whose worker stopped; delete
    # those past their retention, with their files.
    "catalog-jobs-stalled": {
        "task": "catalog.tasks.jobs_stalled_sweep",
        "schedule": 300.0,
    },
    "catalog-jobs-expired": {
        "task": "catalog.tasks.jobs_expired_delete",
        "schedule": 3600.0,
    },
    "preorders-sweeps": {
        "task": "preorders.tasks.preorder_sweeps",
        "schedule": 300.0,
    },
    "crowdfunding-close-due": {
        "task": "crowdfunding.tasks.campaigns_close_due_task",
        "schedule": 60.0,
    },
    "crowdfunding-sweeps": {
        "task": "crowdfunding.tasks.pledge_sweeps",
        "schedule": 300.0,
    },
    # Resumes a settlement whose worker died within ~20 s (payments.settlement_reconcile):
    # cheap when nothing is settling (one indexed query per book).
    "settlement-reconcile": {
        "task": "payments.tasks.settlement_reconcile_due",
        "schedule": 20.0,
    },
}


def house_task(
    *, acks_late: bool = False, max_retries: int = 3, **options: Any
) -> Callable[[Callable[..., Any]], Any]:
    """Our defaults for every task.

    acks_late=True is for idempotent tasks only: the message is acknowledged after the task
    ran, and re-delivered if the worker dies (reject_on_worker_lost), so a killed worker
    never loses work; the task must then be safe to run twice.
    """

    def decorate(func: Callable[..., Any]) -> Any:
        name = f"{func.__module__}.{func.__name__}"
        return shared_task(
            name=name,
            acks_late=acks_late,
            reject_on_worker_lost=acks_late,
            max_retries=max_retries,
            ignore_result=True,
            **options,
        )(func)

    return decorate
