"""Demo crowdfunding campaigns, made through the real services: one live campaign with
pledges, a limited tier and a stretch goal, updates for everyone and for backers only; one
that succeeded (closed now: its shipped rewards became paid orders, its meet-up tier gave
tickets); and one that failed (nobody charged). Each is found by its slug, so running the
seed again creates nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.utils import timezone

from accounts.models import User
from catalog.models import Product, ProductStatus
from communities.honour import brand_community
from crowdfunding.models import Campaign, RewardTier, StretchGoal, UpdateAudience
from crowdfunding.services import (
    campaign_close,
    campaign_launch,
    campaign_save,
    pledge_create,
    update_publish,
)
from payments.services import card_save
from storefront.demo_orders import DEMO_ADDRESS

DEMO_CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"}


@dataclass(frozen=True)
class DemoCampaign:
    slug: str
    brand_slug: str
    title: str
    summary: str
    story: str
    goal: str
    # (title, minimum, limit, kind, ships the brand's first product?)
    tiers: tuple[tuple[str, str, int | None, str, bool], ...]
    stretch: tuple[tuple[str, str], ...]
    # (fan index, tier index or None, amount)
    pledges: tuple[tuple[int, int | None, str], ...]
    flexible: bool = False
    close_now: bool = False


DEMO_CAMPAIGNS = [
    DemoCampaign(
        slug="nimbus-pods-by-fans",
        brand_slug="nimbus-mobile",
        title="Nimbus Pods: earbuds the fans designed",
        summary="Open-fit earbuds with the case the community voted for.",
        story=(
            "## Why\nYou asked for earbuds that last a whole day and a case that fits a coin "
            "pocket. We drew them with you in the forum.\n\n## What your pledge does\n"
            "Nobody is charged unless we reach the goal by the deadline."
        ),
        goal="3000.00",
        tiers=(
            ("Early bird pair", "79.00", 10, "shipped", True),
            ("Meet the designers (video call)", "150.00", 20, "experience", False),
            ("Name in the credits", "10.00", None, "digital", False),
        ),
        stretch=(("2500.00", "Sunset colour for everyone"), ("5000.00", "Wireless charging case")),
        pledges=(
            (0, 0, "79.00"),
            (1, 0, "85.00"),
            (2, 1, "150.00"),
            (3, 2, "15.00"),
            (4, None, "25.00"),
        ),
    ),
    DemoCampaign(
        slug="forge-walnut-stand",
        brand_slug="forge-audio",
        title="Forge walnut headphone stand",
        summary="A solid walnut stand, turned by hand: funded by the listeners.",
        story="A stand for the Studio headphones, from the wood left over from the cups.",
        goal="200.00",
        tiers=(
            ("The stand", "60.00", 30, "shipped", True),
            ("Workshop visit", "120.00", 8, "experience", False),
        ),
        stretch=(("400.00", "Engraved base"),),
        pledges=((0, 0, "60.00"), (1, 1, "120.00"), (2, 0, "70.00"), (3, 1, "120.00")),
        close_now=True,
    ),
    DemoCampaign(
        slug="nimbus-retro-flip",
        brand_slug="nimbus-mobile",
        title="Nimbus Retro Flip",
        summary="A flip phone for 2027. Not enough of us wanted it this time.",
        story="A flip phone with a modern camera. It did not reach its goal: nobody was charged.",
        goal="50000.00",
        tiers=(("First run", "299.00", 500, "shipped", True),),
        stretch=(),
        pledges=((4, 0, "299.00"), (5, 0, "299.00")),
        close_now=True,
    ),
]


def _seed_campaign(demo: DemoCampaign, *, fans: list[User], operator: User | None) -> bool:
    if Campaign.objects.filter(slug=demo.slug).exists() or not fans:
        return False
    product = (
        Product.objects.filter(
            brand__slug=demo.brand_slug, status=ProductStatus.ACTIVE, variants__is_active=True
        )
        .order_by("pk")
        .first()
    )
    if product is None:
        return False
    community = brand_community(brand_id=product.brand_id)
    if community is None:
        return False
    variant = product.variants.filter(is_active=True).order_by("position", "pk").first()
    now = timezone.now()
    campaign = campaign_save(
        campaign=Campaign(
            brand_id=product.brand_id,
            community=community,
            title=demo.title,
            slug=demo.slug,
            summary=demo.summary,
            story=demo.story,
            goal=Decimal(demo.goal),
            launch_at=now - timedelta(days=2),
            deadline=now + timedelta(days=12),
            funding_model="flexible" if demo.flexible else "all_or_nothing",
        )
    )
    tiers = [
        RewardTier.objects.create(
            campaign=campaign,
            title=title,
            min_amount=Decimal(minimum),
            limit=limit,
            kind=kind,
            variant=variant if ships else None,
            position=position,
            estimated_delivery=date.today() + timedelta(days=90),
        )
        for position, (title, minimum, limit, kind, ships) in enumerate(demo.tiers)
    ]
    for amount, title in demo.stretch:
        StretchGoal.objects.create(campaign=campaign, amount=Decimal(amount), title=title)
    campaign_launch(campaign=campaign, actor=operator)
    for n, (fan_index, tier_index, amount) in enumerate(demo.pledges):
        fan = fans[fan_index % len(fans)]
        pledge_create(
            campaign=campaign,
            user=fan,
            tier=tiers[tier_index] if tier_index is not None else None,
            amount=Decimal(amount),
            address={**DEMO_ADDRESS, "full_name": fan.public_name},
            request_key=f"demo-{demo.slug}-{n}",
            saved_card=card_save(user=fan, card=DEMO_CARD),
        )
    if operator is not None:
        update_publish(
            campaign=campaign,
            author=operator,
            title="Thank you for the first week",
            body="We are halfway to the next stretch goal. Tell your friends!",
        )
        update_publish(
            campaign=campaign,
            author=operator,
            title="Backers: first photos of the prototype",
            body="For you only, the first prototype photos from the workshop.",
            audience=UpdateAudience.BACKERS,
        )
    if demo.close_now:
        # The admin's "close now"; the settlement runs on the worker (eager in tests).
        campaign_close(campaign=campaign, actor=operator, force=True)
    return True


def demo_seed_campaigns(*, fans: list[User], operators_by_brand: dict[str, User]) -> int:
    """Returns how many campaigns were created."""
    return sum(
        _seed_campaign(demo, fans=fans, operator=operators_by_brand.get(demo.brand_slug))
        for demo in DEMO_CAMPAIGNS
    )
