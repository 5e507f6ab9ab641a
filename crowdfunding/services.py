"""Every write of crowdfunding: campaigns (launch, close, cancel, fulfil), pledges (intake,
changes, cancel, paying again), tickets, updates and comments.

Counters that can run out are guarded in the database: a campaign's totals and a tier's
`claimed` move only by conditional UPDATEs (`... WHERE status = 'live'`,
`... WHERE claimed < limit`), backed by CheckConstraints. Every pledge write touches its
campaign row first, so writes to one campaign never deadlock over two tiers, and the close
(which locks the campaign row) sees every pledge either wholly before or wholly after it.
The provider is never called while a row lock is held."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from communities.services import post_create_from_brand
from crowdfunding.models import (
    CAMPAIGN_TRANSITIONS,
    COUNTED_STATUSES,
    PLEDGE_TRANSITIONS,
    Campaign,
    CampaignComment,
    CampaignEvent,
    CampaignFollower,
    CampaignStatus,
    CampaignUpdate,
    CommentReport,
    Pledge,
    PledgeStatus,
    RewardKind,
    RewardTicket,
    RewardTier,
    UpdateAudience,
)
from formatting.formats import money
from markup.markdown import markdown_render
from markup.text import text_clean_line
from notifications.models import NotificationKind
from notifications.services import notification_fan_out, notification_send
from payments.models import Payment, PaymentStatus, SavedCard
from payments.services import card_delete, card_save, payment_charge

SETTLEMENT_KIND = "pledge"
SHIPPING_METHOD = "campaign"
ADDRESS_FIELDS = ("full_name", "line1", "line2", "city", "postal_code", "country", "phone")
REPORTS_TO_HIDE = 3
TICKET_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud at a door


class PledgeError(ValidationError):
    """A pledge that cannot be made or changed, with the backer's message."""


class TransitionError(ValidationError):
    pass


# --- the state machines -----------------------------------------------------------------------


def campaign_transition(
    *, campaign: Campaign, to: str, actor: User | None, note: str = ""
) -> Campaign:
    """Move a (locked) campaign to `to` if its state machine allows it, with an event."""
    before = campaign.status
    if to not in CAMPAIGN_TRANSITIONS[before]:
        raise TransitionError(
            _("A campaign cannot go from %(from)s to %(to)s.")
            % {"from": CampaignStatus(before).label, "to": CampaignStatus(to).label}
        )
    campaign.status = to
    campaign.save(update_fields=["status"])
    CampaignEvent.objects.create(
        campaign=campaign, actor=actor, from_status=before, to_status=to, note=note[:300]
    )
    return campaign


def pledge_transition(*, pledge: Pledge, to: str, actor: User | None, note: str = "") -> Pledge:
    before = pledge.status
    if to not in PLEDGE_TRANSITIONS[before]:
        raise TransitionError(
            _("A pledge cannot go from %(from)s to %(to)s.")
            % {"from": PledgeStatus(before).label, "to": PledgeStatus(to).label}
        )
    pledge.status = to
    pledge.save(update_fields=["status", "updated_at"])
    CampaignEvent.objects.create(
        campaign_id=pledge.campaign_id,
        pledge=pledge,
        actor=actor,
        from_status=before,
        to_status=to,
        note=note[:300],
    )
    return pledge


def _locked(campaign: Campaign) -> Campaign:
    return (
        Campaign.objects.select_for_update(of=("self",)).select_related("brand").get(pk=campaign.pk)
    )


# --- campaigns --------------------------------------------------------------------------------


def campaign_save(*, campaign: Campaign) -> Campaign:
    """The operator's edit (admin): the story rendered to sanitized HTML, validated, saved.
    Money, window and tiers are fixed once a campaign is live (checked in the admin form)."""
    campaign.title = text_clean_line(campaign.title)
    campaign.summary = text_clean_line(campaign.summary)
    campaign.story_html = markdown_render(campaign.story)
    if campaign.community_id and campaign.brand_id:
        community_brand = (
            type(campaign)
            .community.field.related_model.objects.filter(pk=campaign.community_id)
            .values_list("brand_id", flat=True)
            .first()
        )
        if community_brand != campaign.brand_id:
            raise ValidationError({"community": _("Choose a community of the campaign's brand.")})
    campaign.full_clean()
    campaign.save()
    return campaign


def campaign_check_ready(*, campaign: Campaign) -> None:
    if campaign.deadline <= timezone.now():
        raise ValidationError(_("The deadline has passed: set a later one before launching."))
    if not campaign.story.strip():
        raise ValidationError(_("Tell the campaign's story before launching."))


@transaction.atomic
def campaign_launch(*, campaign: Campaign, actor: User | None) -> Campaign:
    campaign = _locked(campaign)
    if campaign.status != CampaignStatus.DRAFT:
        raise TransitionError(_("Only a draft campaign can be launched."))
    campaign_check_ready(campaign=campaign)
    campaign_transition(campaign=campaign, to=CampaignStatus.LIVE, actor=actor, note="Launched")
    if campaign.launch_at > timezone.now():
        return campaign
    _tell_followers(
        campaign,
        title=_("%(title)s is live") % {"title": campaign.title},
        body=campaign.summary,
    )
    return campaign


def campaign_succeeds(campaign: Campaign) -> bool:
    """Goal met, or flexible with at least one pledge (a flexible campaign nobody backed
    fails)."""
    if campaign.is_flexible:
        return campaign.backer_count > 0
    return campaign.pledged_total >= campaign.goal


@transaction.atomic
def campaign_close(*, campaign: Campaign, actor: User | None = None, force: bool = False) -> bool:
    """At the deadline (or now, `force`, from the admin): charge every held pledge if the
    campaign succeeds, else release them all. Returns False if there was nothing to do
    (already closed, not yet due): safe to call twice."""
    from payments.settlement import settlement_start

    campaign = _locked(campaign)
    if campaign.status != CampaignStatus.LIVE:
        return False
    if not force and campaign.deadline > timezone.now():
        return False
    campaign.closed_at = timezone.now()
    campaign.save(update_fields=["closed_at"])
    raised = money(campaign.pledged_total, campaign.currency)
    if campaign_succeeds(campaign):
        campaign_transition(
            campaign=campaign,
            to=CampaignStatus.SETTLING,
            actor=actor,
            note=f"Raised {raised} of {money(campaign.goal, campaign.currency)}: charging",
        )
    else:
        campaign_transition(
            campaign=campaign,
            to=CampaignStatus.FAILING,
            actor=actor,
            note=f"Raised {raised} of {money(campaign.goal, campaign.currency)}: releasing",
        )
    settlement_start(kind=SETTLEMENT_KIND, parent_id=campaign.pk)
    return True


def campaigns_close_due(*, limit: int = 50) -> int:
    """Beat and `manage.py close_due_campaigns`: close the live campaigns past their
    deadline, each in its own transaction; a campaign another worker is closing is skipped."""
    closed = 0
    now = timezone.now()
    while True:
        with transaction.atomic():
            due = list(
                Campaign.objects.select_for_update(skip_locked=True)
                .filter(status=CampaignStatus.LIVE, deadline__lte=now)
                .order_by("deadline", "pk")
                .values_list("pk", flat=True)[:limit]
            )
        if not due:
            return closed
        for pk in due:
            closed += campaign_close(campaign=Campaign(pk=pk))
        if len(due) < limit:
            return closed


@transaction.atomic
def campaign_cancel(*, campaign: Campaign, actor: User, reason: str = "") -> Campaign:
    """The brand calls it off: a draft is marked failed; a live campaign releases every
    pledge (nobody is charged)."""
    from payments.settlement import settlement_start

    campaign = _locked(campaign)
    note = f"Cancelled{': ' + reason if reason else ''}"
    if campaign.status == CampaignStatus.DRAFT:
        return campaign_transition(
            campaign=campaign, to=CampaignStatus.FAILED, actor=actor, note=note
        )
    if campaign.status != CampaignStatus.LIVE:
        raise TransitionError(_("Only a draft or live campaign can be cancelled."))
    campaign.closed_at = timezone.now()
    campaign.save(update_fields=["closed_at"])
    campaign_transition(campaign=campaign, to=CampaignStatus.FAILING, actor=actor, note=note)
    settlement_start(kind=SETTLEMENT_KIND, parent_id=campaign.pk)
    return campaign


@transaction.atomic
def campaign_fulfil(*, campaign: Campaign, actor: User) -> Campaign:
    campaign = _locked(campaign)
    return campaign_transition(
        campaign=campaign, to=CampaignStatus.FULFILLED, actor=actor, note="Rewards delivered"
    )


def _tell_followers(campaign: Campaign, *, title: str, body: str = "", backers: bool = False):
    followers = set(
        CampaignFollower.objects.filter(campaign=campaign).values_list("user_id", flat=True)
    )
    if backers:
        followers |= set(
            Pledge.objects.filter(campaign=campaign)
            .exclude(status=PledgeStatus.CANCELLED)
            .values_list("user_id", flat=True)
        )
    if followers:
        notification_fan_out(
            recipient_ids=sorted(followers),
            kind=NotificationKind.CAMPAIGN,
            title=title,
            body=body,
            url=campaign.get_absolute_url(),
        )


@transaction.atomic
def campaign_follow(*, campaign: Campaign, user: User, follow: bool = True) -> bool:
    if follow:
        CampaignFollower.objects.get_or_create(campaign=campaign, user=user)
    else:
        CampaignFollower.objects.filter(campaign=campaign, user=user).delete()
    return follow


# --- pledges ----------------------------------------------------------------------------------


def _amount(value) -> Decimal:
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError, TypeError) as exc:
        raise PledgeError(_("Enter an amount, such as 25.00.")) from exc
    if not amount.is_finite() or amount < Decimal("1.00"):
        raise PledgeError(_("Pledge at least 1.00."))
    if amount >= Decimal("10000000"):
        raise PledgeError(_("That amount is more than a pledge can be."))
    return amount


def _check_tier(campaign: Campaign, tier: RewardTier | None, amount: Decimal) -> None:
    if tier is None:
        return
    if tier.campaign_id != campaign.pk:
        raise PledgeError(_("Choose one of this campaign's rewards."))
    if amount < tier.min_amount:
        raise PledgeError(
            _("“%(tier)s” needs a pledge of at least %(min)s.")
            % {"tier": tier.title, "min": money(tier.min_amount, campaign.currency)}
        )


def _check_address(tier: RewardTier | None, address: dict[str, str]) -> dict[str, str]:
    if tier is None or tier.kind != RewardKind.SHIPPED:
        return {}
    cleaned = {key: text_clean_line(str(address.get(key, ""))) for key in ADDRESS_FIELDS}
    missing = [
        key for key in ("full_name", "line1", "city", "postal_code", "country") if not cleaned[key]
    ]
    if missing:
        raise PledgeError(_("This reward is shipped: enter the address to send it to."))
    return cleaned


def _campaign_count(
    campaign_id: int, *, amount_delta: Decimal, backer_delta: int, live: bool = True
) -> None:
    """Move the campaign's totals, only while it takes pledges: this row's lock orders every
    pledge write against the others and against the close."""
    now = timezone.now()
    rows = Campaign.objects.filter(pk=campaign_id)
    if live:
        rows = rows.filter(status=CampaignStatus.LIVE, launch_at__lte=now, deadline__gt=now)
    if not rows.update(
        pledged_total=F("pledged_total") + amount_delta,
        backer_count=F("backer_count") + backer_delta,
    ):
        raise PledgeError(_("This campaign is not taking pledges now."))


def _tier_take(tier: RewardTier) -> None:
    if (
        not RewardTier.objects.filter(pk=tier.pk)
        .filter(Q(limit__isnull=True) | Q(claimed__lt=F("limit")))
        .update(claimed=F("claimed") + 1)
    ):
        raise PledgeError(
            _("“%(tier)s” is all taken. Choose another reward.") % {"tier": tier.title}
        )


def _tier_give_back(tier_id: int | None) -> None:
    if tier_id is not None:
        RewardTier.objects.filter(pk=tier_id, claimed__gt=0).update(claimed=F("claimed") - 1)


def _ship_fields(address: dict[str, str]) -> dict[str, str]:
    return {
        ("ship_name" if key == "full_name" else f"ship_{key}"): address.get(key, "")
        for key in ADDRESS_FIELDS
    }


@transaction.atomic
def _pledge_create(
    *,
    campaign: Campaign,
    user: User,
    tier: RewardTier | None,
    amount: Decimal,
    saved_card: SavedCard,
    address: dict[str, str],
    request_key: str,
) -> tuple[Pledge, bool]:
    existing = Pledge.objects.filter(user=user, request_key=request_key).first()
    if existing:
        return existing, False
    if saved_card.user_id != user.pk or saved_card.deleted_at:
        raise PledgeError(_("Choose one of your cards."))
    _check_tier(campaign, tier, amount)
    address = _check_address(tier, address)
    _campaign_count(campaign.pk, amount_delta=amount, backer_delta=1)
    # Asked again behind the campaign row's lock: a twin submit that waited finds its twin.
    existing = Pledge.objects.filter(user=user, request_key=request_key).first()
    if existing:
        transaction.set_rollback(True)
        return existing, False
    if Pledge.objects.filter(
        campaign_id=campaign.pk, user=user, status__in=COUNTED_STATUSES
    ).exists():
        raise PledgeError(_("You already back this campaign: change your pledge instead."))
    if tier is not None:
        _tier_take(tier)
    pledge = Pledge(
        campaign_id=campaign.pk,
        user=user,
        tier=tier,
        amount=amount,
        saved_card=saved_card,
        request_key=request_key,
        **_ship_fields(address),
    )
    pledge.full_clean(exclude=["request_key", "campaign", "user", "tier", "saved_card"])
    pledge.save()
    CampaignEvent.objects.create(
        campaign_id=campaign.pk,
        pledge=pledge,
        actor=user,
        to_status=PledgeStatus.HELD,
        note=f"Pledged {money(amount, campaign.currency)}"
        + (f" for “{tier.title}”" if tier else " with no reward"),
    )
    from crowdfunding.receipts import pledge_receipt

    pledge.campaign = campaign
    pledge_receipt(pledge=pledge, what="made")
    return pledge, True


def pledge_create(
    *,
    campaign: Campaign,
    user: User,
    amount,
    request_key: str,
    tier: RewardTier | None = None,
    address: dict[str, str] | None = None,
    saved_card: SavedCard | None = None,
    card: dict | None = None,
) -> Pledge:
    """The pledge form: a saved card, or the `card` typed in (saved now for the charge at
    the deadline, forgotten if no pledge is made). A twin submit of the same form returns the
    first pledge. Raises PledgeError (CardError for a typed card) with the backer's message,
    having changed nothing."""
    request_key = (request_key or "")[:64]
    if not request_key:
        raise PledgeError(_("This form is out of date: reload the page and try again."))
    existing = Pledge.objects.filter(user=user, request_key=request_key).first()
    if existing is not None:
        return existing
    amount = _amount(amount)
    _check_tier(campaign, tier, amount)
    _check_address(tier, address or {})
    typed = None
    if saved_card is None:
        saved_card = typed = card_save(user=user, card=card or {})
    try:
        pledge, made = _pledge_create(
            campaign=campaign,
            user=user,
            tier=tier,
            amount=amount,
            saved_card=saved_card,
            address=address or {},
            request_key=request_key,
        )
    except IntegrityError as exc:  # the one-pledge constraint, raced by another form
        if typed is not None:
            card_delete(user=user, card=typed, force=True)
        raise PledgeError(_("You already back this campaign: change your pledge instead.")) from exc
    except ValidationError:
        if typed is not None:
            card_delete(user=user, card=typed, force=True)
        raise
    if not made and typed is not None and typed.pk != pledge.saved_card_id:
        card_delete(user=user, card=typed, force=True)
    return pledge


def _locked_pledge(pledge: Pledge, user: User | None) -> Pledge:
    pledge = (
        Pledge.objects.select_for_update(of=("self",))
        .select_related("campaign", "tier", "user")
        .get(pk=pledge.pk)
    )
    if user is not None and pledge.user_id != user.pk:
        raise PermissionDenied
    return pledge


@transaction.atomic
def pledge_change(
    *,
    pledge: Pledge,
    user: User,
    amount,
    tier: RewardTier | None,
    address: dict[str, str] | None = None,
) -> Pledge:
    """Raise, lower or change the reward of a held pledge until the deadline. A limited
    tier is taken under the same rule as a new pledge; the old one is given back."""
    amount = _amount(amount)
    campaign = pledge.campaign
    _check_tier(campaign, tier, amount)
    address = _check_address(tier, address or {})
    # The campaign row first (as every pledge write), then the pledge.
    _campaign_count(campaign.pk, amount_delta=Decimal("0"), backer_delta=0)
    pledge = _locked_pledge(pledge, user)
    if pledge.status != PledgeStatus.HELD:
        raise PledgeError(_("This pledge can no longer be changed."))
    old_tier_id, old_amount = pledge.tier_id, pledge.amount
    new_tier_id = tier.pk if tier else None
    if new_tier_id == old_tier_id and amount == old_amount and not address:
        return pledge
    if new_tier_id != old_tier_id:
        if tier is not None:
            _tier_take(tier)
        _tier_give_back(old_tier_id)
    Campaign.objects.filter(pk=campaign.pk).update(
        pledged_total=F("pledged_total") + (amount - old_amount)
    )
    pledge.tier, pledge.amount = tier, amount
    fields = ["tier", "amount", "updated_at"]
    if address:
        for name, value in _ship_fields(address).items():
            setattr(pledge, name, value)
        fields += list(_ship_fields(address))
    pledge.full_clean(exclude=["request_key", "campaign", "user", "tier", "saved_card"])
    pledge.save(update_fields=fields)
    CampaignEvent.objects.create(
        campaign_id=campaign.pk,
        pledge=pledge,
        actor=user,
        from_status=PledgeStatus.HELD,
        to_status=PledgeStatus.HELD,
        note=f"Changed to {money(amount, campaign.currency)}"
        + (f" for “{tier.title}”" if tier else " with no reward"),
    )
    from crowdfunding.receipts import pledge_receipt

    pledge_receipt(pledge=pledge, what="changed")
    return pledge


@transaction.atomic
def pledge_cancel(*, pledge: Pledge, user: User) -> Pledge:
    campaign = pledge.campaign
    if pledge.user_id != user.pk:
        raise PermissionDenied
    if pledge.status == PledgeStatus.CANCELLED:
        return pledge
    # The campaign row first (as every pledge write), then the pledge.
    _campaign_count(campaign.pk, amount_delta=Decimal("0"), backer_delta=0)
    pledge = _locked_pledge(pledge, user)
    if pledge.status == PledgeStatus.CANCELLED:
        return pledge
    if pledge.status != PledgeStatus.HELD:
        raise PledgeError(_("This pledge can no longer be cancelled."))
    Campaign.objects.filter(pk=campaign.pk).update(
        pledged_total=F("pledged_total") - pledge.amount, backer_count=F("backer_count") - 1
    )
    _tier_give_back(pledge.tier_id)
    pledge_transition(pledge=pledge, to=PledgeStatus.CANCELLED, actor=user, note="Cancelled")
    from crowdfunding.receipts import pledge_receipt

    pledge_receipt(pledge=pledge, what="cancelled")
    return pledge


def _payment_waiting(pledge: Pledge) -> Payment | None:
    payment = Payment.objects.filter(idempotency_key=pledge.payment_key).first()
    if payment is None:
        return None
    if payment.status == PaymentStatus.REQUIRES_ACTION or (
        payment.status == PaymentStatus.PENDING
        and payment.provider_key
        and not payment.failure_code
    ):
        return payment
    return None


def pledge_pay_again(
    *, pledge: Pledge, user: User, saved_card: SavedCard | None, card: dict | None = None
) -> Payment:
    """In the fix-payment window after a declined charge: pay with another card. The
    provider is called with no lock held; the payment listener records the outcome."""
    waiting = _payment_waiting(pledge)
    if waiting is not None:
        return waiting
    chosen = saved_card or card_save(user=user, card=card or {})
    payment = None
    try:
        with transaction.atomic():
            locked = _locked_pledge(pledge, user)
            if locked.status != PledgeStatus.PAYMENT_FAILED:
                raise PledgeError(_("This pledge does not need a payment."))
            if locked.grace_until and locked.grace_until <= timezone.now():
                raise PledgeError(_("The time to pay for this pledge has run out."))
            if chosen.user_id != user.pk:
                raise PledgeError(_("Choose one of your cards."))
            if locked.saved_card_id != chosen.pk:
                locked.saved_card = chosen
                locked.save(update_fields=["saved_card", "updated_at"])
        payment = payment_charge(
            user=user,
            reference=locked.payment_reference,
            amount=locked.amount_charged or locked.amount,
            currency=locked.campaign.currency,
            saved_card=chosen,
            idempotency_key=locked.payment_key,
            off_session=False,
            metadata={"pledge": str(locked.pk)},
        )
        return payment
    finally:
        if saved_card is None and (payment is None or payment.saved_card_id != chosen.pk):
            card_delete(user=user, card=chosen, force=True)


def pledge_payment_changed(*, payment: Payment) -> None:
    """payments' listener for "pledge:" references (a retry, 3-D Secure, a webhook), inside
    the payment's transaction. A paid pledge stays paid."""
    from crowdfunding.settlement import pledges_fulfil

    pledge = (
        Pledge.objects.select_for_update(of=("self",))
        .select_related("campaign", "tier__variant__product", "user")
        .get(pk=int(payment.reference.split(":", 1)[1]))
    )
    if pledge.status == PledgeStatus.CHARGING:
        return  # the settlement engine records this one itself
    if payment.status == PaymentStatus.SUCCEEDED and pledge.status == PledgeStatus.PAYMENT_FAILED:
        pledge.amount_charged = payment.amount
        pledge.save(update_fields=["amount_charged", "updated_at"])
        pledge_transition(
            pledge=pledge,
            to=PledgeStatus.CHARGED,
            actor=pledge.user,
            note=f"Paid {money(payment.amount, payment.currency)} after a failed charge",
        )
        pledges_fulfil(pledges=[pledge], payments={pledge.pk: payment})
    elif (
        payment.status in (PaymentStatus.FAILED, PaymentStatus.REQUIRES_ACTION)
        and pledge.status == PledgeStatus.PAYMENT_FAILED
    ):
        pledge.failure_message = (payment.failure_message or "Needs authentication")[:300]
        pledge.save(update_fields=["failure_message", "updated_at"])


def pledges_grace_sweep() -> tuple[int, int]:
    """Beat: remind backers whose charge failed every CROWDFUNDING_REMINDER_HOURS; drop the
    pledge when the fix-payment window ends. Returns (reminded, released)."""
    from crowdfunding.receipts import payment_failed_email

    now = timezone.now()
    failed = Pledge.objects.filter(status=PledgeStatus.PAYMENT_FAILED)
    released = 0
    for pk in list(failed.filter(grace_until__lte=now).values_list("pk", flat=True)[:500]):
        with transaction.atomic():
            pledge = (
                Pledge.objects.select_for_update(of=("self",)).select_related("campaign").get(pk=pk)
            )
            if pledge.status != PledgeStatus.PAYMENT_FAILED:
                continue
            pledge_transition(
                pledge=pledge,
                to=PledgeStatus.RELEASED,
                actor=None,
                note="Not paid within the fix-payment window",
            )
            Campaign.objects.filter(pk=pledge.campaign_id).update(
                pledged_total=F("pledged_total") - pledge.amount,
                backer_count=F("backer_count") - 1,
            )
            _tier_give_back(pledge.tier_id)
            notification_send(
                recipient_id=pledge.user_id,
                kind=NotificationKind.CAMPAIGN,
                title=_("Your pledge to %(title)s was dropped") % {"title": pledge.campaign.title},
                body=_("The payment was not completed in time."),
                url=pledge.get_absolute_url(),
            )
            released += 1
    due = now - timedelta(hours=settings.CROWDFUNDING_REMINDER_HOURS)
    reminded = 0
    for pledge in failed.filter(grace_until__gt=now, reminded_at__lte=due).select_related(
        "campaign", "user"
    )[:500]:
        with transaction.atomic():
            if Pledge.objects.filter(
                pk=pledge.pk, reminded_at__lte=due, status=PledgeStatus.PAYMENT_FAILED
            ).update(reminded_at=now):
                payment_failed_email(pledge=pledge, reminder=True)
                reminded += 1
    return reminded, released


# --- tickets ----------------------------------------------------------------------------------


def ticket_code() -> str:
    return "".join(secrets.choice(TICKET_ALPHABET) for _ in range(10))


@dataclass(frozen=True)
class CheckIn:
    ticket: RewardTicket
    first_time: bool


@transaction.atomic
def ticket_check_in(*, code: str, actor: User) -> CheckIn:
    """The brand checks a ticket in by its code, once; a second check-in says when the
    first was. Only the campaign's brand operators (or staff superusers) may."""
    code = "".join(ch for ch in (code or "").upper() if ch.isalnum())[:16]
    ticket = (
        RewardTicket.objects.select_for_update(of=("self",))
        .select_related("pledge__campaign__brand", "pledge__user", "pledge__tier")
        .filter(code=code)
        .first()
    )
    brand = ticket.pledge.campaign.brand if ticket else None
    if ticket is None or not (actor.is_superuser or brand.operators.filter(pk=actor.pk).exists()):
        raise ValidationError(_("No ticket has this code."))
    if ticket.checked_in_at is not None:
        return CheckIn(ticket=ticket, first_time=False)
    ticket.checked_in_at, ticket.checked_in_by = timezone.now(), actor
    ticket.save(update_fields=["checked_in_at", "checked_in_by"])
    CampaignEvent.objects.create(
        campaign_id=ticket.pledge.campaign_id,
        pledge=ticket.pledge,
        actor=actor,
        from_status=ticket.pledge.status,
        to_status=ticket.pledge.status,
        note=f"Ticket {ticket.code} checked in",
    )
    return CheckIn(ticket=ticket, first_time=True)


# --- updates and comments -----------------------------------------------------------------------


@transaction.atomic
def update_publish(
    *,
    campaign: Campaign,
    author: User,
    title: str,
    body: str,
    audience: str = UpdateAudience.PUBLIC,
    tier_ids: list[int] | None = None,
    update: CampaignUpdate | None = None,
) -> CampaignUpdate:
    """Post (or save, from the admin) an update. Backers are told; a public update also
    appears in the brand community's feed, as a post of the brand."""
    first_time = update is None or update.pk is None
    update = update or CampaignUpdate(campaign=campaign)
    update.campaign, update.author = campaign, update.author or author
    update.title, update.body = text_clean_line(title), body
    update.body_html = markdown_render(body)
    update.audience = audience
    update.full_clean(exclude=["body_html", "author"])
    update.save()
    if tier_ids is not None:
        update.tiers.set(RewardTier.objects.filter(campaign=campaign, pk__in=tier_ids))
    if not first_time:
        return update
    recipients = update_readers(update=update)
    if audience == UpdateAudience.PUBLIC:
        post = post_create_from_brand(
            community=campaign.community,
            author=author,
            title=f"{campaign.title}: {update.title}",
            body=f"{body}\n\n[{_('Read it on the campaign page')}]({update.get_absolute_url()})",
        )
        CampaignUpdate.objects.filter(pk=update.pk).update(community_post_id=post.pk)
        recipients |= set(
            CampaignFollower.objects.filter(campaign=campaign).values_list("user_id", flat=True)
        )
    if recipients:
        notification_fan_out(
            recipient_ids=sorted(recipients - {author.pk}),
            kind=NotificationKind.CAMPAIGN,
            title=f"{campaign.title}: {update.title}",
            url=update.get_absolute_url(),
        )
    return update


def update_readers(*, update: CampaignUpdate) -> set[int]:
    """The backers an update is for (every backer for a public one)."""
    backers = Pledge.objects.filter(campaign_id=update.campaign_id, status__in=COUNTED_STATUSES)
    tier_ids = list(update.tiers.values_list("pk", flat=True))
    if update.audience == UpdateAudience.BACKERS and tier_ids:
        backers = backers.filter(tier_id__in=tier_ids)
    return set(backers.values_list("user_id", flat=True))


@transaction.atomic
def comment_create(*, campaign: Campaign, author: User, body: str) -> CampaignComment:
    body = (body or "").strip()
    if not body:
        raise ValidationError(_("Write something first."))
    if len(body) > 5_000:
        raise ValidationError(_("Keep a comment under 5,000 characters."))
    if campaign.status == CampaignStatus.DRAFT:
        raise ValidationError(_("This campaign is not open for comments."))
    comment = CampaignComment(
        campaign=campaign, author=author, body=body, body_html=markdown_render(body)
    )
    comment.full_clean(exclude=["body_html"])
    comment.save()
    return comment


def comment_report(*, comment: CampaignComment, reporter: User, reason: str) -> CommentReport:
    reason = text_clean_line(reason or "")
    if not reason:
        raise ValidationError(_("Say why this should be looked at."))
    if comment.author_id == reporter.pk:
        raise ValidationError(_("You cannot report your own comment."))
    try:
        with transaction.atomic():
            report = CommentReport.objects.create(
                comment=comment, reporter=reporter, reason=reason[:300]
            )
    except IntegrityError as exc:
        raise ValidationError(_("You have already reported this.")) from exc
    open_reports = CommentReport.objects.filter(comment=comment, resolved_at__isnull=True).count()
    if open_reports >= REPORTS_TO_HIDE:
        CampaignComment.objects.filter(pk=comment.pk, hidden_at__isnull=True).update(
            hidden_at=timezone.now()
        )
    return report


def comment_hide(*, comment: CampaignComment, hidden: bool = True) -> None:
    CampaignComment.objects.filter(pk=comment.pk).update(
        hidden_at=timezone.now() if hidden else None
    )
    CommentReport.objects.filter(comment=comment, resolved_at__isnull=True).update(
        resolved_at=timezone.now()
    )
