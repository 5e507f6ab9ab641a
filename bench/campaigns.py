"""Pledges per second into one campaign's limited reward tier, from 16 clients (threads, each
its own connection), through crowdfunding.services.pledge_create (the engine's intake: the
campaign row locked, the tier taken with a conditional UPDATE, the pledge and its event
written, the receipt queued). 1,000 fans pledge once each into a tier of 800, so the last
200 are refused by the limit. The floor, in the same run: the same pledge rows inserted with
one INSERT and one commit each from 16 threads (what pgbench would send)."""

from __future__ import annotations

import functools
import statistics
import uuid
from datetime import date, timedelta
from decimal import Decimal

from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from bench.preorders import THREADS, _fans, _threaded
from bench.runner import Figure, compared
from catalog.models import Brand
from communities.models import Community
from crowdfunding.models import Campaign, CampaignEvent, Pledge, RewardTier
from crowdfunding.services import PledgeError, pledge_create

RUNS = 3
LIMIT = 800
SLUG = "bench-campaign"


def _clear() -> None:
    campaigns = Campaign.objects.filter(slug__startswith=SLUG)
    CampaignEvent.objects.filter(campaign__in=campaigns).delete()
    Pledge.objects.filter(campaign__in=campaigns).delete()
    RewardTier.objects.filter(campaign__in=campaigns).delete()
    campaigns.delete()


def _campaign(tag: str) -> tuple[Campaign, RewardTier]:
    brand, _ = Brand.objects.get_or_create(slug="bench-brand", defaults={"name": "Bench brand"})
    community, _ = Community.objects.get_or_create(
        slug="bench-brand-fans", defaults={"name": "Bench fans", "kind": "brand", "brand": brand}
    )
    now = timezone.now()
    campaign = Campaign.objects.create(
        brand=brand,
        community=community,
        title=f"Bench campaign {tag}",
        slug=f"{SLUG}-{tag}",
        story="x",
        story_html="<p>x</p>",
        goal=Decimal("1000.00"),
        launch_at=now - timedelta(minutes=1),
        deadline=now + timedelta(days=1),
        status="live",
    )
    tier = RewardTier.objects.create(
        campaign=campaign,
        title="Early bird",
        min_amount=Decimal("20.00"),
        limit=LIMIT,
        kind="digital",
        estimated_delivery=date.today() + timedelta(days=30),
    )
    return campaign, tier


def _pledge_all(campaign, tier, calls) -> int:
    refused = 0
    for user, card, key in calls:
        try:
            pledge_create(
                campaign=campaign,
                user=user,
                tier=tier,
                amount=Decimal("25.00"),
                request_key=key,
                saved_card=card,
            )
        except PledgeError:
            refused += 1
    return refused


def _raw_seconds(campaign, tier, calls) -> float:
    import psycopg

    params = connection.get_connection_params()
    now = timezone.now()
    sql = (
        "INSERT INTO crowdfunding_pledge (campaign_id, user_id, tier_id, amount, status,"
        " saved_card_id, request_key, deposit_paid, deposit_refunded, failure_message,"
        " ship_name, ship_line1, ship_line2, ship_city, ship_postal_code, ship_country,"
        " ship_phone, created_at, updated_at)"
        " VALUES (%s, %s, %s, 25, 'held', %s, %s, 0, 0, '', '', '', '', '', '', '', '', %s, %s)"
    )

    def insert(share) -> int:
        with psycopg.connect(**params, autocommit=True) as conn:
            for user, card, key in share:
                conn.execute(sql, [campaign.pk, user.pk, tier.pk, card.pk, key, now, now])
        return 0

    elapsed, _ = _threaded(insert, calls, THREADS)
    return elapsed


def run() -> dict[str, Figure]:
    call_command("migrate", verbosity=0)
    users, cards = _fans()  # the pre-order bench's 1,000 fans and their cards
    _clear()
    rates, floors = [], []
    for n in range(RUNS):
        campaign, tier = _campaign(f"{n}-{uuid.uuid4().hex[:6]}")
        calls = [(user, cards[user.pk], f"bench-pledge-{campaign.pk}-{user.pk}") for user in users]
        elapsed, refused = _threaded(functools.partial(_pledge_all, campaign, tier), calls, THREADS)
        tier.refresh_from_db()
        held = Pledge.objects.filter(campaign=campaign, tier=tier, status="held").count()
        assert tier.claimed == held == LIMIT and refused == len(calls) - LIMIT, (
            tier.claimed,
            held,
            refused,
        )
        rates.append(len(calls) / elapsed)
        floor_campaign, floor_tier = _campaign(f"floor-{n}-{uuid.uuid4().hex[:6]}")
        floor_calls = [(u, c, f"bench-floor-{floor_campaign.pk}-{u.pk}") for u, c, _ in calls]
        floors.append(len(calls) / _raw_seconds(floor_campaign, floor_tier, floor_calls))
    _clear()
    rate, floor = statistics.median(rates), statistics.median(floors)
    return {
        "campaigns.pledges_per_s_limited_tier": compared(
            rate,
            floor,
            "per_s",
            f"{len(users):,} fans from {THREADS} threads into a tier of {LIMIT} (the rest "
            "refused), pledge_create through the engine's intake; baseline: one raw INSERT "
            "and commit per pledge from the same threads",
        )
    }
