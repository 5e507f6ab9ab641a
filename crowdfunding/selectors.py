"""Reads for crowdfunding, with the visibility rules in one place: a draft campaign exists
only for its brand's operators (and superusers); a backers-only update exists only for the
backers it is for (and the brand's operators): everyone else gets a 404, guessed ids
included."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.timesince import timeuntil

from accounts.models import User
from crowdfunding.models import (
    COUNTED_STATUSES,
    Campaign,
    CampaignComment,
    CampaignFollower,
    CampaignStatus,
    CampaignUpdate,
    Pledge,
    PledgeStatus,
    RewardTicket,
    RewardTier,
    StretchGoal,
    UpdateAudience,
)
from payments.models import SavedCard

PUBLIC_STATUSES = [s for s in CampaignStatus.values if s != CampaignStatus.DRAFT]
FINISHED = [CampaignStatus.SUCCESSFUL, CampaignStatus.FAILED, CampaignStatus.FULFILLED]


def is_operator(*, campaign: Campaign, user: User) -> bool:
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    return campaign.brand.operators.filter(pk=user.pk).exists()


@dataclass
class Progress:
    raised: Decimal
    goal: Decimal
    currency: str
    percent: int
    backers: int
    deadline: datetime
    launch_at: datetime
    status: str

    @property
    def bar_percent(self) -> int:
        return min(self.percent, 100)

    @property
    def is_upcoming(self) -> bool:
        return self.status == CampaignStatus.LIVE and self.launch_at > timezone.now()

    @property
    def is_open(self) -> bool:
        now = timezone.now()
        return self.status == CampaignStatus.LIVE and self.launch_at <= now < self.deadline

    @property
    def time_left(self) -> str:
        return timeuntil(self.deadline) if self.deadline > timezone.now() else ""


def campaign_progress(*, campaign: Campaign) -> Progress:
    """From the campaign's own counters: no query."""
    return Progress(
        raised=campaign.pledged_total,
        goal=campaign.goal,
        currency=campaign.currency,
        percent=campaign.percent,
        backers=campaign.backer_count,
        deadline=campaign.deadline,
        launch_at=campaign.launch_at,
        status=campaign.status,
    )


def _with_progress(campaigns) -> list[Campaign]:
    campaigns = list(campaigns)
    for campaign in campaigns:
        campaign.progress = campaign_progress(campaign=campaign)
    return campaigns


def campaigns_live(*, limit: int | None = None, brand_id: int | None = None) -> list[Campaign]:
    """Live campaigns taking pledges now, closing soonest first; one query."""
    now = timezone.now()
    campaigns = Campaign.objects.filter(
        status=CampaignStatus.LIVE, launch_at__lte=now, deadline__gt=now
    ).select_related("brand")
    if brand_id is not None:
        campaigns = campaigns.filter(brand_id=brand_id)
    campaigns = campaigns.order_by("deadline", "pk")
    return _with_progress(campaigns[:limit] if limit else campaigns)


@dataclass
class CampaignListing:
    live: list[Campaign]
    upcoming: list[Campaign]
    finished: list[Campaign]


def campaign_listing(*, finished_limit: int = 24) -> CampaignListing:
    """/campaigns/: three queries."""
    now = timezone.now()
    base = Campaign.objects.select_related("brand")
    upcoming = base.filter(status=CampaignStatus.LIVE, launch_at__gt=now).order_by("launch_at")
    finished = base.filter(
        Q(status__in=FINISHED + [CampaignStatus.SETTLING, CampaignStatus.FAILING])
        | Q(status=CampaignStatus.LIVE, deadline__lte=now)
    ).order_by("-deadline", "-pk")[:finished_limit]
    return CampaignListing(
        live=campaigns_live(), upcoming=_with_progress(upcoming), finished=_with_progress(finished)
    )


def stretch_goals_shown(*, goals: list[StretchGoal], raised: Decimal) -> list[dict]:
    """Every reached goal, then the next one; the ones after it stay hidden."""
    shown = []
    for goal in goals:
        reached = raised >= goal.amount
        shown.append({"goal": goal, "reached": reached})
        if not reached:
            break
    return shown


@dataclass
class CampaignPage:
    campaign: Campaign
    progress: Progress
    tiers: list[RewardTier]
    stretch_goals: list[dict]
    updates: list[CampaignUpdate]
    comments: list[CampaignComment]
    my_pledge: Pledge | None
    is_operator: bool
    is_following: bool
    hidden_goals: int = 0
    cards: list[SavedCard] = field(default_factory=list)


def campaign_for(*, slug: str, user: User) -> Campaign:
    campaign = Campaign.objects.select_related("brand", "community").filter(slug=slug).first()
    if campaign is None:
        raise Http404("No such campaign")
    if campaign.status == CampaignStatus.DRAFT and not is_operator(campaign=campaign, user=user):
        raise Http404("No such campaign")
    return campaign


def my_pledge(*, campaign: Campaign, user: User) -> Pledge | None:
    if not user.is_authenticated:
        return None
    return (
        Pledge.objects.filter(campaign=campaign, user=user, status__in=COUNTED_STATUSES)
        .select_related("tier", "saved_card")
        .first()
    )


def updates_visible(
    *, campaign: Campaign, user: User, pledge: Pledge | None, operator: bool
) -> QuerySet[CampaignUpdate]:
    updates = CampaignUpdate.objects.filter(campaign=campaign)
    if operator:
        return updates
    public = Q(audience=UpdateAudience.PUBLIC)
    if pledge is None:
        return updates.filter(public)
    for_all_backers = ~Exists(
        CampaignUpdate.tiers.through.objects.filter(campaignupdate_id=OuterRef("pk"))
    )
    for_my_tier = Exists(
        CampaignUpdate.tiers.through.objects.filter(
            campaignupdate_id=OuterRef("pk"), rewardtier_id=pledge.tier_id
        )
    )
    return updates.filter(
        public | Q(audience=UpdateAudience.BACKERS) & (for_all_backers | for_my_tier)
    )


def campaign_page(*, campaign: Campaign, user: User) -> CampaignPage:
    operator = is_operator(campaign=campaign, user=user)
    pledge = my_pledge(campaign=campaign, user=user)
    progress = campaign_progress(campaign=campaign)
    goals = list(campaign.stretch_goals.all())
    shown = stretch_goals_shown(goals=goals, raised=campaign.pledged_total)
    updates = list(
        updates_visible(campaign=campaign, user=user, pledge=pledge, operator=operator)
        .select_related("author")
        .prefetch_related("tiers")[:20]
    )
    comments = list(
        CampaignComment.objects.filter(campaign=campaign, hidden_at__isnull=True)
        .select_related("author")
        .annotate(
            by_backer=Exists(
                Pledge.objects.filter(
                    campaign_id=campaign.pk,
                    user_id=OuterRef("author_id"),
                    status__in=COUNTED_STATUSES,
                )
            )
        )
        .order_by("created_at", "id")[:200]
    )
    following = (
        user.is_authenticated
        and CampaignFollower.objects.filter(campaign=campaign, user=user).exists()
    )
    cards = (
        list(SavedCard.objects.filter(user=user, deleted_at__isnull=True).order_by("-pk"))
        if user.is_authenticated
        else []
    )
    return CampaignPage(
        campaign=campaign,
        progress=progress,
        tiers=list(campaign.tiers.select_related("variant__product")),
        stretch_goals=shown,
        hidden_goals=len(goals) - len(shown),
        updates=updates,
        comments=comments,
        my_pledge=pledge,
        is_operator=operator,
        is_following=following,
        cards=cards,
    )


def update_for(*, campaign: Campaign, user: User, pk: int) -> CampaignUpdate:
    operator = is_operator(campaign=campaign, user=user)
    update = (
        updates_visible(
            campaign=campaign,
            user=user,
            pledge=my_pledge(campaign=campaign, user=user),
            operator=operator,
        )
        .filter(pk=pk)
        .select_related("author")
        .first()
    )
    if update is None:
        raise Http404("No such update")
    return update


@dataclass
class MyCampaigns:
    pledges: list[Pledge]
    tickets: list[RewardTicket]


def pledges_of(*, user: User) -> QuerySet[Pledge]:
    """The user's pledges, newest first, with their campaign, tier and order."""
    return (
        Pledge.objects.filter(user=user)
        .select_related("campaign", "tier", "order")
        .order_by("-created_at", "-pk")
    )


def my_campaigns(*, user: User) -> MyCampaigns:
    pledges = list(pledges_of(user=user)[:100])
    tickets = list(
        RewardTicket.objects.filter(pledge__user=user)
        .select_related("pledge__campaign", "pledge__tier")
        .order_by("-created_at")
    )
    return MyCampaigns(pledges=pledges, tickets=tickets)


def pledge_of(*, user: User, pk: int) -> Pledge:
    pledge = (
        Pledge.objects.filter(pk=pk, user=user)
        .select_related("campaign", "tier", "saved_card", "order")
        .prefetch_related(Prefetch("campaign__tiers"))
        .first()
    )
    if pledge is None:
        raise Http404("No such pledge")
    return pledge


def pledge_card_uses(*, card: SavedCard) -> list[str]:
    """payments' card-use checker: the pledges this card will still be charged for."""
    now = timezone.now()
    return [
        f"your pledge to {pledge.campaign.title}"
        for pledge in Pledge.objects.filter(saved_card=card)
        .filter(
            Q(status__in=[PledgeStatus.HELD, PledgeStatus.CHARGING])
            | Q(status=PledgeStatus.PAYMENT_FAILED, grace_until__gt=now)
        )
        .select_related("campaign")
    ]


def fulfilment_rows(*, campaign: Campaign):
    """The fulfilment list: every paid backer, their reward and where to send it."""
    yield [
        "pledge",
        "backer email",
        "reward",
        "kind",
        "amount",
        "status",
        "order",
        "ticket",
        "checked in",
        "name",
        "line1",
        "line2",
        "city",
        "postal code",
        "country",
        "phone",
    ]
    pledges = (
        Pledge.objects.filter(campaign=campaign, status__in=COUNTED_STATUSES)
        .select_related("user", "tier", "order", "ticket")
        .order_by("tier__position", "tier_id", "pk")
    )
    for p in pledges.iterator(chunk_size=500):
        ticket = getattr(p, "ticket", None)
        yield [
            p.pk,
            p.user.email,
            p.tier.title if p.tier else "",
            p.tier.get_kind_display() if p.tier else "",
            p.amount,
            p.get_status_display(),
            p.order.number if p.order else "",
            ticket.code if ticket else "",
            ticket.checked_in_at.isoformat() if ticket and ticket.checked_in_at else "",
            p.ship_name,
            p.ship_line1,
            p.ship_line2,
            p.ship_city,
            p.ship_postal_code,
            p.ship_country,
            p.ship_phone,
        ]


def fulfilment_csv_rows(*, campaigns: list[Campaign]):
    """The fulfilment list of several campaigns as CSV rows: one header, then each
    campaign's backers; a cell starting with = + - @ would run as a formula in a
    spreadsheet, so it gets a leading apostrophe."""
    for index, campaign in enumerate(campaigns):
        for n, row in enumerate(fulfilment_rows(campaign=campaign)):
            if n == 0 and index > 0:
                continue
            yield ["'" + str(v) if str(v)[:1] in "=+-@" else v for v in row]


def fulfilment_export(*, brand, params: dict):
    """The fulfilment CSV of the selected campaigns of `brand`, for a worker's export job
    (catalog.exports): the number of backers' rows and the rows."""
    ids = list(params.get("ids", []))
    found = Campaign.objects.filter(pk__in=ids, brand=brand).in_bulk()
    campaigns = [found[pk] for pk in ids if pk in found]
    total = Pledge.objects.filter(campaign__in=campaigns, status__in=COUNTED_STATUSES).count()
    return total, fulfilment_csv_rows(campaigns=campaigns)
