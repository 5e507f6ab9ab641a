"""Crowdfunding campaigns: a brand's project that fans back with pledges during a window,
charged at the deadline only if the goal is met (all-or-nothing) or in any case (flexible).

Every state change of a campaign or a pledge goes through crowdfunding.services, which checks
the transition against the tables below and leaves a CampaignEvent."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from catalog.models import Brand, Variant
from communities.models import Community
from payments.commitments.machine import Action, StateMachine
from payments.commitments.models import (
    COMMITMENT_TRANSITIONS,
    COUNTED_STATUSES,
    CommitmentFields,
    CommitmentStatus,
    StateEvent,
    commitment_constraints,
)


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    LIVE = "live", _("Live")
    SETTLING = "settling", _("Charging backers")
    FAILING = "failing", _("Releasing pledges")
    SUCCESSFUL = "successful", _("Successful")
    FAILED = "failed", _("Not funded")
    FULFILLED = "fulfilled", _("Fulfilled")


CAMPAIGN_TRANSITIONS: dict[str, set[str]] = {
    CampaignStatus.DRAFT: {CampaignStatus.LIVE, CampaignStatus.FAILED},
    CampaignStatus.LIVE: {CampaignStatus.SETTLING, CampaignStatus.FAILING},
    CampaignStatus.SETTLING: {CampaignStatus.SUCCESSFUL},
    CampaignStatus.FAILING: {CampaignStatus.FAILED},
    CampaignStatus.SUCCESSFUL: {CampaignStatus.FULFILLED},
    CampaignStatus.FAILED: set(),
    CampaignStatus.FULFILLED: set(),
}


class FundingModel(models.TextChoices):
    ALL_OR_NOTHING = "all_or_nothing", _("All or nothing")
    FLEXIBLE = "flexible", _("Flexible (keep what is raised)")


class Campaign(models.Model):
    brand_lookup = "brand"

    brand = models.ForeignKey(Brand, on_delete=models.PROTECT, related_name="campaigns")
    community = models.ForeignKey(
        Community,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The brand's community, where public updates appear.",
    )
    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, unique=True)
    summary = models.CharField(max_length=300, blank=True, help_text="One line for listings.")
    story = models.TextField(max_length=50_000, blank=True, help_text="Markdown.")
    story_html = models.TextField(blank=True, editable=False)
    cover = models.ImageField(upload_to="campaigns/covers/", blank=True)
    video_url = models.URLField(
        blank=True, help_text="Optional: a YouTube or Vimeo link to the campaign video."
    )
    goal = models.DecimalField(
        max_digits=12, decimal_places=2, validators=[MinValueValidator(Decimal("1.00"))]
    )
    currency = models.CharField(max_length=3, default=settings.STORE_CURRENCY, editable=False)
    launch_at = models.DateTimeField()
    deadline = models.DateTimeField()
    funding_model = models.CharField(
        max_length=20, choices=FundingModel.choices, default=FundingModel.ALL_OR_NOTHING
    )
    status = models.CharField(
        max_length=20,
        choices=CampaignStatus.choices,
        default=CampaignStatus.DRAFT,
        db_index=True,
        editable=False,
    )
    # Kept by crowdfunding.services with conditional UPDATEs: the sum and count of the pledges
    # that count (held, being charged, charged, in their fix-payment window).
    pledged_total = models.DecimalField(
        max_digits=14, decimal_places=2, default=Decimal("0.00"), editable=False
    )
    backer_count = models.PositiveIntegerField(default=0, editable=False)
    closed_at = models.DateTimeField(null=True, blank=True, editable=False)
    settled_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["deadline", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(deadline__gt=F("launch_at")), name="crowdfunding_window_ordered"
            ),
            models.CheckConstraint(condition=Q(goal__gt=0), name="crowdfunding_goal_positive"),
            models.CheckConstraint(
                condition=Q(pledged_total__gte=0), name="crowdfunding_pledged_not_negative"
            ),
        ]
        indexes = [models.Index(fields=["status", "deadline"], name="crowdfunding_due")]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("crowdfunding:detail", kwargs={"slug": self.slug})

    @property
    def is_flexible(self) -> bool:
        return self.funding_model == FundingModel.FLEXIBLE

    @property
    def percent(self) -> int:
        return int(self.pledged_total * 100 / self.goal) if self.goal else 0


class StretchGoal(models.Model):
    """Reached when the campaign raises `amount`: shown once the one before it is reached."""

    brand_lookup = "campaign__brand"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="stretch_goals")
    amount = models.DecimalField(
        max_digits=12, decimal_places=2, validators=[MinValueValidator(Decimal("1.00"))]
    )
    title = models.CharField(max_length=200)
    description = models.TextField(max_length=2_000, blank=True)

    class Meta:
        ordering = ["amount"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "amount"], name="crowdfunding_stretch_once_per_amount"
            )
        ]

    def __str__(self) -> str:
        return f"{self.title} at {self.amount}"


class RewardKind(models.TextChoices):
    SHIPPED = "shipped", _("Shipped goods")
    EXPERIENCE = "experience", _("A right or an experience (ticket)")
    DIGITAL = "digital", _("A digital thank-you")


class RewardTier(models.Model):
    brand_lookup = "campaign__brand"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="tiers")
    title = models.CharField(max_length=200)
    description = models.TextField(max_length=5_000, blank=True)
    min_amount = models.DecimalField(
        "minimum pledge",
        max_digits=12,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("1.00"))],
    )
    limit = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="How many backers can choose this reward (empty: no limit).",
    )
    # Pledges holding this tier now; taken with `UPDATE ... WHERE claimed < limit`.
    claimed = models.PositiveIntegerField(default=0, editable=False)
    estimated_delivery = models.DateField(null=True, blank=True)
    kind = models.CharField(max_length=20, choices=RewardKind.choices, default=RewardKind.SHIPPED)
    variant = models.ForeignKey(
        Variant,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Shipped goods: the brand's product variant each backer receives.",
    )
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "min_amount", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(limit__isnull=True) | Q(claimed__lte=F("limit")),
                name="crowdfunding_tier_within_limit",
            ),
            models.CheckConstraint(
                condition=Q(min_amount__gt=0), name="crowdfunding_tier_min_positive"
            ),
            models.CheckConstraint(
                condition=Q(variant__isnull=True) | Q(kind="shipped"),
                name="crowdfunding_tier_variant_shipped",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def remaining(self) -> int | None:
        if self.limit is None:
            return None
        return max(self.limit - self.claimed, 0)

    @property
    def is_sold_out(self) -> bool:
        return self.limit is not None and self.claimed >= self.limit

    @property
    def ships(self) -> bool:
        return self.kind == RewardKind.SHIPPED


# A pledge's states and their table are the commitments engine's (payments.commitments).
PledgeStatus = CommitmentStatus
PLEDGE_TRANSITIONS = COMMITMENT_TRANSITIONS


class Pledge(CommitmentFields):
    """A backer's commitment to a campaign: the engine's fields (card, status, request key,
    what was charged, the fix-payment window) plus the reward, the amount and the address."""

    brand_lookup = "campaign__brand"

    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="pledges")
    tier = models.ForeignKey(
        RewardTier, on_delete=models.PROTECT, null=True, blank=True, related_name="pledges"
    )
    amount = models.DecimalField(
        max_digits=12, decimal_places=2, validators=[MinValueValidator(Decimal("1.00"))]
    )
    order = models.OneToOneField(
        "orders.Order",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="pledge",
        editable=False,
    )
    # Where to ship a shipped reward, as it was when pledging.
    ship_name = models.CharField(max_length=120, blank=True)
    ship_line1 = models.CharField(max_length=200, blank=True)
    ship_line2 = models.CharField(max_length=200, blank=True)
    ship_city = models.CharField(max_length=100, blank=True)
    ship_postal_code = models.CharField(max_length=20, blank=True)
    ship_country = models.CharField(max_length=2, blank=True)
    ship_phone = models.CharField(max_length=30, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            *commitment_constraints("crowdfunding_pledge"),
            models.CheckConstraint(
                condition=Q(amount__gt=0), name="crowdfunding_pledge_amount_positive"
            ),
            models.UniqueConstraint(
                fields=["campaign", "user"],
                condition=Q(status__in=["held", "charging", "charged", "payment_failed"]),
                name="crowdfunding_one_pledge_per_backer",
                violation_error_message=_(
                    "You already back this campaign: change your pledge instead."
                ),
            ),
        ]
        indexes = [
            models.Index(fields=["campaign", "status", "id"], name="crowdfunding_pledge_open"),
            models.Index(fields=["user", "-created_at"], name="crowdfunding_pledge_user"),
            models.Index(
                fields=["grace_until"],
                name="crowdfunding_pledge_grace",
                condition=Q(status="payment_failed"),
            ),
        ]

    def __str__(self) -> str:
        return f"Pledge {self.pk}: {self.amount} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("crowdfunding:pledge", kwargs={"pk": self.pk})

    @property
    def payment_reference(self) -> str:
        return f"pledge:{self.pk}"

    @property
    def payment_key(self) -> str:
        """The idempotency key of the settlement charge: one charge per pledge."""
        return f"pledge-{self.pk}"

    @property
    def is_counted(self) -> bool:
        return self.status in COUNTED_STATUSES


class RewardTicket(models.Model):
    """A right or an experience a paid pledge redeems: its code is scanned or typed in by
    the brand, and checked in once."""

    brand_lookup = "pledge__campaign__brand"

    pledge = models.OneToOneField(Pledge, on_delete=models.CASCADE, related_name="ticket")
    code = models.CharField(max_length=16, unique=True, editable=False)
    checked_in_at = models.DateTimeField(null=True, blank=True, editable=False)
    checked_in_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.code


class UpdateAudience(models.TextChoices):
    PUBLIC = "public", _("Everyone")
    BACKERS = "backers", _("Backers only")


class CampaignUpdate(models.Model):
    brand_lookup = "campaign__brand"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="updates")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    title = models.CharField(max_length=200)
    body = models.TextField(max_length=20_000, help_text="Markdown.")
    body_html = models.TextField(editable=False)
    audience = models.CharField(
        max_length=10, choices=UpdateAudience.choices, default=UpdateAudience.PUBLIC
    )
    tiers = models.ManyToManyField(
        RewardTier,
        blank=True,
        related_name="+",
        help_text="Backers only: limit to the backers of these tiers (none: every backer).",
    )
    # The post that carries a public update into the community's feed.
    community_post_id = models.BigIntegerField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("crowdfunding:update", kwargs={"slug": self.campaign.slug, "pk": self.pk})


class CampaignComment(models.Model):
    brand_lookup = "campaign__brand"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="campaign_comments"
    )
    body = models.TextField(max_length=5_000)
    body_html = models.TextField(editable=False)
    hidden_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(
                fields=["campaign", "created_at", "id"],
                name="crowdfunding_comments",
                condition=Q(hidden_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"Comment {self.pk} on {self.campaign_id}"


class CommentReport(models.Model):
    """A signed-in fan's report of a campaign comment, for the brand's operators."""

    brand_lookup = "comment__campaign__brand"

    comment = models.ForeignKey(CampaignComment, on_delete=models.CASCADE, related_name="reports")
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    reason = models.CharField(max_length=300)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["comment", "reporter"], name="crowdfunding_report_once")
        ]

    def __str__(self) -> str:
        return f"Report by {self.reporter_id}: {self.reason[:40]}"


class CampaignEvent(StateEvent):
    """Who changed a campaign or a pledge, when, from which state to which."""

    brand_lookup = "campaign__brand"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="events")
    pledge = models.ForeignKey(
        Pledge, on_delete=models.CASCADE, null=True, blank=True, related_name="events"
    )

    class Meta(StateEvent.Meta):
        pass

    def __str__(self) -> str:
        subject = f"pledge {self.pledge_id}" if self.pledge_id else "campaign"
        return f"{subject}: {self.from_status or '-'} -> {self.to_status}"


class CampaignFollower(models.Model):
    """A fan who asked to hear about a campaign (its launch, updates, outcome)."""

    brand_lookup = "campaign__brand"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="followers")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="followed_campaigns"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "user"], name="crowdfunding_follow_once")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} follows {self.campaign_id}"


# Every move of a campaign or a pledge goes through these (payments.commitments.machine);
# the admin's actions read CAMPAIGN_MACHINE.allowed_actions.
CAMPAIGN_MACHINE = StateMachine(
    model=Campaign,
    transitions=CAMPAIGN_TRANSITIONS,
    event_model=CampaignEvent,
    event_for=lambda campaign: {"campaign": campaign},
    noun="campaign",
    actions=(
        Action("launch", "Launch", to=CampaignStatus.LIVE),
        Action("close", "Close now", to=(CampaignStatus.SETTLING, CampaignStatus.FAILING)),
        Action("cancel", "Cancel", to=(CampaignStatus.FAILED, CampaignStatus.FAILING)),
        Action("fulfil", "Mark fulfilled", to=CampaignStatus.FULFILLED),
    ),
)

PLEDGE_MACHINE = StateMachine(
    model=Pledge,
    transitions=PLEDGE_TRANSITIONS,
    event_model=CampaignEvent,
    event_for=lambda pledge: {"campaign_id": pledge.campaign_id, "pledge": pledge},
    noun="pledge",
)
