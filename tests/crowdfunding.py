"""Campaigns, tiers and pledges for tests, made through the real services."""

import uuid
from datetime import date, timedelta
from decimal import Decimal

from django.utils import timezone

from communities.models import Community, Membership
from crowdfunding.models import Campaign, CampaignStatus, RewardTier, StretchGoal
from crowdfunding.services import pledge_create
from payments.services import card_save
from tests.factories import BrandFactory, UserFactory
from tests.shop import ADDRESS, CARD_OK

CARD_DECLINED_ON_CHARGE = {**CARD_OK, "number": "4000000000000341"}


def brand_community(brand) -> Community:
    community = Community.objects.filter(brand=brand, kind="brand").first()
    if community is None:
        community = Community.objects.create(
            name=f"{brand.name} fans",
            slug=f"{brand.slug}-fans-{uuid.uuid4().hex[:4]}",
            kind="brand",
            brand=brand,
        )
    return community


def campaign_live(
    *,
    brand=None,
    goal: str = "1000.00",
    flexible: bool = False,
    deadline_in: timedelta = timedelta(days=14),
    tiers=(("Thank-you", "10.00", None, "digital"),),
    stretch=(),
    status: str = CampaignStatus.LIVE,
) -> Campaign:
    """A live campaign with `tiers` as (title, min amount, limit, kind)."""
    brand = brand or BrandFactory()
    now = timezone.now()
    campaign = Campaign.objects.create(
        brand=brand,
        community=brand_community(brand),
        title=f"{brand.name} project",
        slug=f"{brand.slug}-project-{uuid.uuid4().hex[:6]}",
        summary="A thing fans asked for",
        story="We will **make** it.",
        story_html="<p>We will <strong>make</strong> it.</p>",
        goal=Decimal(goal),
        launch_at=now - timedelta(minutes=5),
        deadline=now + deadline_in,
        funding_model="flexible" if flexible else "all_or_nothing",
        status=status,
    )
    for position, (title, minimum, limit, kind) in enumerate(tiers):
        RewardTier.objects.create(
            campaign=campaign,
            title=title,
            min_amount=Decimal(minimum),
            limit=limit,
            kind=kind,
            position=position,
            estimated_delivery=date.today() + timedelta(days=90),
        )
    for amount, title in stretch:
        StretchGoal.objects.create(campaign=campaign, amount=Decimal(amount), title=title)
    return campaign


def pledge(*, campaign, user=None, amount="10.00", tier=None, card=CARD_OK, member=False):
    user = user or UserFactory()
    if member:
        Membership.objects.get_or_create(community=campaign.community, user=user)
    saved = card_save(user=user, card=card)
    return pledge_create(
        campaign=campaign,
        user=user,
        tier=tier,
        amount=Decimal(amount),
        address=ADDRESS,
        request_key=uuid.uuid4().hex,
        saved_card=saved,
    )
