"""A campaign's settlement exactly once: a real Celery worker settles 600 pledges (a fifth
on a card the bank declines) with beat running, is killed with SIGKILL in the middle of a
chunk, and another worker finishes. Every pledge is charged at most once at the provider,
recorded once, and every shipped reward becomes exactly one order."""

import os
import signal
import subprocess
import sys
from collections import Counter
from decimal import Decimal

import pytest
from django.db import connection

from config.celery import app
from crowdfunding.models import CampaignEvent, CampaignStatus, Pledge, PledgeStatus
from crowdfunding.services import campaign_close
from orders.models import Order
from payments.models import LocalCharge, Payment
from payments.services import card_save
from tests.crowdfunding import CARD_DECLINED_ON_CHARGE, campaign_live
from tests.factories import UserFactory, VariantFactory
from tests.services import BASE_DIR, celery_worker_start, process_stop, wait_until
from tests.shop import ADDRESS, CARD_OK

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

PLEDGES = 600
DECLINING = 120


def _env(rate: int) -> dict[str, str]:
    return dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="config.settings.test",
        FANHUB_TEST_DATABASE_NAME=connection.settings_dict["NAME"],
        SETTLEMENT_CHUNK_SIZE="150",
        SETTLEMENT_RATE_LOCAL=str(rate),
    )


def _beat(schedule, log) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "beat",
            "--loglevel=INFO",
            f"--schedule={schedule}",
        ],
        cwd=BASE_DIR,
        env=_env(5000),
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def real_queue(settings):
    settings.SETTLEMENT_CHUNK_SIZE = 150
    app.conf.task_always_eager = False
    yield
    app.conf.task_always_eager = True


def _count(*statuses) -> int:
    return Pledge.objects.filter(status__in=statuses).count()


def test_a_worker_killed_mid_settlement_charges_no_backer_twice(real_queue, tmp_path):
    campaign = campaign_live(goal="100.00", tiers=[("The phone", "40.00", None, "shipped")])
    tier = campaign.tiers.get()
    tier.variant = VariantFactory(product__brand=campaign.brand)
    tier.save()
    users = [UserFactory() for _ in range(PLEDGES)]
    cards = [
        card_save(user=user, card=CARD_DECLINED_ON_CHARGE if index < DECLINING else CARD_OK)
        for index, user in enumerate(users)
    ]
    address = {
        ("ship_name" if key == "full_name" else f"ship_{key}"): value
        for key, value in ADDRESS.items()
    }
    Pledge.objects.bulk_create(
        [
            Pledge(
                campaign=campaign,
                user=user,
                tier=tier,
                amount=Decimal("40.00"),
                saved_card=card,
                request_key=f"bulk-{index}",
                **address,
            )
            for index, (user, card) in enumerate(zip(users, cards, strict=True))
        ]
    )
    type(campaign).objects.filter(pk=campaign.pk).update(
        pledged_total=Decimal("40.00") * PLEDGES, backer_count=PLEDGES
    )
    log_path = tmp_path / "workers.log"
    log = log_path.open("w")
    beat = _beat(tmp_path / "beat-schedule", log)
    first = celery_worker_start(env=_env(150), log=log)
    second = None
    try:
        assert campaign_close(campaign=campaign, force=True)
        wait_until(
            lambda: _count(PledgeStatus.CHARGED, PledgeStatus.PAYMENT_FAILED) >= 100,
            timeout=120,
            what="the first worker to settle some pledges",
        )
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert _count(PledgeStatus.CHARGED, PledgeStatus.PAYMENT_FAILED) < PLEDGES
        second = celery_worker_start(env=_env(5000), log=log)
        wait_until(
            lambda: type(campaign).objects.get(pk=campaign.pk).status == CampaignStatus.SUCCESSFUL,
            timeout=120,
            what="the campaign to succeed",
            explain=lambda: (
                f"{Counter(Pledge.objects.values_list('status', flat=True))}\n"
                + log_path.read_text()[-1500:]
            ),
        )
    finally:
        for process in (first, second, beat):
            if process is not None and process.poll() is None:
                process_stop(process)
        log.close()

    statuses = Counter(Pledge.objects.values_list("status", flat=True))
    assert statuses == {
        PledgeStatus.CHARGED: PLEDGES - DECLINING,
        PledgeStatus.PAYMENT_FAILED: DECLINING,
    }
    ids = set(Pledge.objects.values_list("pk", flat=True))
    per_pledge = Counter(
        int(key.split(":", 1)[0].removeprefix("pledge-"))
        for key in LocalCharge.objects.values_list("idempotency_key", flat=True)
    )
    assert set(per_pledge) == ids and set(per_pledge.values()) == {1}
    assert Payment.objects.filter(idempotency_key__startswith="pledge-").count() == PLEDGES
    moves = Counter(
        CampaignEvent.objects.filter(pledge__isnull=False).values_list("pledge_id", flat=True)
    )
    assert set(moves) == ids and set(moves.values()) == {1}
    orders = Counter(
        Order.objects.filter(paid_through__startswith="pledge:").values_list(
            "paid_through", flat=True
        )
    )
    assert len(orders) == PLEDGES - DECLINING and set(orders.values()) == {1}
