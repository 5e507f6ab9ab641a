"""A limited reward tier under contention, on Postgres with real transactions: 200 fans
pledging at once from 16 threads into a tier of 50 get exactly 50; and backers moving
between two limited tiers while others pledge never push either past its limit."""

import random
import threading
import uuid
from collections import Counter
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Sum

from crowdfunding.models import COUNTED_STATUSES, Campaign, Pledge, RewardTier
from crowdfunding.services import pledge_change, pledge_create
from payments.services import card_save
from tests.crowdfunding import campaign_live
from tests.factories import UserFactory
from tests.shop import ADDRESS, CARD_OK

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 16
FANS = 200
LIMIT = 50


def _run(jobs, work):
    start = threading.Barrier(THREADS)
    outcomes = Counter()
    lock = threading.Lock()

    def run(share):
        start.wait()
        try:
            for job in share:
                try:
                    work(job)
                    result = "ok"
                except ValidationError as exc:
                    result = exc.messages[0][:24]
                with lock:
                    outcomes[result] += 1
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(jobs[i::THREADS],)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def _totals_match(campaign: Campaign) -> None:
    campaign.refresh_from_db()
    counted = Pledge.objects.filter(campaign=campaign, status__in=COUNTED_STATUSES)
    assert campaign.backer_count == counted.count()
    assert campaign.pledged_total == (counted.aggregate(s=Sum("amount"))["s"] or Decimal("0"))
    for tier in campaign.tiers.all():
        assert tier.claimed == counted.filter(tier=tier).count()
        assert tier.limit is None or tier.claimed <= tier.limit


def test_two_hundred_fans_into_a_tier_of_fifty_get_exactly_fifty():
    campaign = campaign_live(goal="100000.00", tiers=[("Early bird", "25.00", LIMIT, "digital")])
    tier = campaign.tiers.get()
    fans = [UserFactory() for _ in range(FANS)]
    cards = {fan.pk: card_save(user=fan, card=CARD_OK) for fan in fans}
    jobs = [(fan, uuid.uuid4().hex) for fan in fans]
    jobs += [jobs[i] for i in range(0, FANS, 20)]  # some forms submitted twice

    def work(job):
        fan, key = job
        pledge_create(
            campaign=campaign,
            user=fan,
            tier=tier,
            amount="25.00",
            address=ADDRESS,
            request_key=key,
            saved_card=cards[fan.pk],
        )

    outcomes = _run(jobs, work)
    tier = RewardTier.objects.get(pk=tier.pk)
    held = Pledge.objects.filter(campaign=campaign, tier=tier, status__in=COUNTED_STATUSES)
    assert held.count() == LIMIT == tier.claimed
    assert held.values("user").distinct().count() == LIMIT
    assert outcomes["ok"] >= LIMIT and sum(outcomes.values()) == len(jobs)
    assert all(k == "ok" or "is all take" in k for k in outcomes), outcomes
    _totals_match(campaign)


def test_changes_of_tier_under_contention_keep_every_limit():
    campaign = campaign_live(
        goal="100000.00",
        tiers=[("Gold", "30.00", 20, "digital"), ("Silver", "30.00", 20, "digital")],
    )
    gold, silver = campaign.tiers.order_by("position")
    fans = [UserFactory() for _ in range(60)]
    cards = {fan.pk: card_save(user=fan, card=CARD_OK) for fan in fans}
    # 30 backers hold a place now (15 in each tier); 30 more fans arrive while they move.
    pledges = [
        pledge_create(
            campaign=campaign,
            user=fan,
            tier=gold if index % 2 else silver,
            amount="30.00",
            address=ADDRESS,
            request_key=uuid.uuid4().hex,
            saved_card=cards[fan.pk],
        )
        for index, fan in enumerate(fans[:30])
    ]
    rng = random.Random(3)
    jobs = [("change", p, rng.choice([gold, silver])) for p in pledges for _ in range(3)]
    jobs += [("new", fan, rng.choice([gold, silver])) for fan in fans[30:]]
    rng.shuffle(jobs)

    def work(job):
        kind, who, tier = job
        if kind == "change":
            pledge_change(pledge=who, user=who.user, amount="31.00", tier=tier)
        else:
            pledge_create(
                campaign=campaign,
                user=who,
                tier=tier,
                amount="30.00",
                address=ADDRESS,
                request_key=uuid.uuid4().hex,
                saved_card=cards[who.pk],
            )

    outcomes = _run(jobs, work)
    assert outcomes["ok"] > 0
    for tier in (gold, silver):
        tier.refresh_from_db()
        assert tier.claimed <= tier.limit
    assert RewardTier.objects.filter(campaign=campaign).aggregate(s=Sum("claimed"))["s"] == 40
    _totals_match(campaign)
