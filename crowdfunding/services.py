"""Every write of crowdfunding: campaigns (launch, close, cancel, fulfil), pledges (intake,
changes, cancel, paying again), tickets, updates and comments.

Counters that can run out are guarded in the database: a campaign's totals and a tier's
`claimed` move only by conditional UPDATEs (`... WHERE status = 'live'`,
`... WHERE claimed < limit`), backed by CheckConstraints. Every pledge write touches its
campaign row first, so writes to one campaign never deadlock over two tiers, and the close
(which locks the campaign row) sees every pledge either wholly before or wholly after it.
The provider is never called while a row lock is held."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from audit.services import audit_record
from communities.models import Community
from communities.services import post_create_from_brand
from crowdfunding.book import (
    ADDRESS_FIELDS,
    PLEDGE_BOOK,
    SETTLEMENT_KIND,
    tell_followers,
)
from crowdfunding.models import (
    CAMPAIGN_MACHINE,
    COUNTED_STATUSES,
    PLEDGE_MACHINE,
    Campaign,
    CampaignComment,
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
from notifications.services import notification_fan_out
from payments.commitments import lifecycle
from payments.models import Payment, SavedCard
from payments.services import card_delete, card_save

__all__ = ["SETTLEMENT_KIND"]
REPORTS_TO_HIDE = 3


class PledgeError(ValidationError):
    """A pledge that cannot be made or changed, with the backer's message."""


# --- the state machines (payments.commitments.machine) ------------------------------------------


def campaign_transition(
    *, campaign: Campaign, to: str, actor: User | None, note: str = ""
) -> Campaign:
    """Move a (locked) campaign to `to` if its state machine allows it, with an event."""
    return CAMPAIGN_MACHINE.transition(campaign, to=to, actor=actor, note=note)


def pledge_transition(*, pledge: Pledge, to: str, actor: User | None, note: str = "") -> Pledge:
    return PLEDGE_MACHINE.transition(pledge, to=to, actor=actor, note=note)


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
            Community.objects.filter(pk=campaign.community_id)
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
    CAMPAIGN_MACHINE.check(campaign, CampaignStatus.LIVE)
    campaign_check_ready(campaign=campaign)
    before = campaign.status
    campaign_transition(campaign=campaign, to=CampaignStatus.LIVE, actor=actor, note="Launched")
    if actor is not None:
        _audit_campaign(campaign, actor, "campaign.launch", before)
    if campaign.launch_at > timezone.now():
        return campaign
    tell_followers(
        campaign, title=_("%(title)s is live") % {"title": campaign.title}, body=campaign.summary
    )
    return campaign


def campaign_succeeds(campaign: Campaign) -> bool:
    """Goal met, or flexible with at least one pledge (a flexible campaign nobody backed
    fails)."""
    return PLEDGE_BOOK.threshold_met(campaign)


def campaign_close(*, campaign: Campaign, actor: User | None = None, force: bool = False) -> bool:
    """At the deadline (or now, `force`, from the admin): the engine charges every held
    pledge if the campaign succeeds, else releases them all. False when there was nothing to
    do (already closed, not yet due, being closed by another worker): safe to call twice."""
    with transaction.atomic():
        closed = lifecycle.parent_close(book=PLEDGE_BOOK, parent=campaign, actor=actor, force=force)
        if closed and actor is not None:  # the operator's "close now" (the beat's: events)
            _audit_campaign(campaign, actor, "campaign.close", CampaignStatus.LIVE)
    return closed


def _audit_campaign(campaign: Campaign, actor: User, action: str, before: str) -> None:
    campaign.refresh_from_db(fields=["status", "brand"])
    audit_record(
        actor=actor,
        action=action,
        obj=campaign,
        brand_id=campaign.brand_id,
        before={"status": before},
        after={"status": campaign.status},
    )


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


def campaign_cancel(*, campaign: Campaign, actor: User, reason: str = "") -> Campaign:
    """The brand calls it off: a draft is marked failed; a live campaign releases every
    pledge (nobody is charged)."""
    with transaction.atomic():
        before = (
            Campaign.objects.select_for_update()
            .values_list("status", flat=True)
            .get(pk=campaign.pk)
        )
        campaign = lifecycle.parent_cancel(
            book=PLEDGE_BOOK,
            parent=campaign,
            actor=actor,
            reason=f"Cancelled{': ' + reason if reason else ''}",
        )
        _audit_campaign(campaign, actor, "campaign.cancel", before)
    return campaign


@transaction.atomic
def campaign_fulfil(*, campaign: Campaign, actor: User) -> Campaign:
    campaign = _locked(campaign)
    before = campaign.status
    campaign = campaign_transition(
        campaign=campaign, to=CampaignStatus.FULFILLED, actor=actor, note="Rewards delivered"
    )
    _audit_campaign(campaign, actor, "campaign.fulfil", before)
    return campaign


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


def pledge_committed(*, pledge: Pledge) -> None:
    """The book's `on_commit`: the engine has validated (one pledge per backer included:
    the constraint, checked under the lock) and saved the held pledge under the campaign's
    row lock. Here the tier's place and the campaign's totals; a full tier rolls the whole
    commit back. Nothing slow here: every pledge to the campaign waits for this."""
    if pledge.tier is not None:
        _tier_take(pledge.tier)
    Campaign.objects.filter(pk=pledge.campaign_id).update(
        pledged_total=F("pledged_total") + pledge.amount, backer_count=F("backer_count") + 1
    )
    PLEDGE_MACHINE.note(
        pledge,
        actor=pledge.user,
        note=f"Pledged {money(pledge.amount)}"
        + (f" for “{pledge.tier.title}”" if pledge.tier else " with no reward"),
    )
    pledge.just_made = True  # its receipt is written once the campaign's lock is released


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
    _check_tier(campaign, tier, amount)
    address = _check_address(tier, address)
    if campaign.launch_at > timezone.now():
        raise PledgeError(_("This campaign is not taking pledges yet."))
    pledge = lifecycle.commitment_commit(
        book=PLEDGE_BOOK,
        parent=campaign,
        user=user,
        saved_card=saved_card,
        request_key=request_key,
        tier=tier,
        amount=amount,
        **_ship_fields(address),
    )
    made = getattr(pledge, "just_made", False)
    if made:
        # After the commit, outside the campaign's lock (rendering two templates there
        # would make every other backer wait): the receipt and its notice.
        from crowdfunding.receipts import pledge_receipt

        with transaction.atomic():
            pledge_receipt(pledge=pledge, what="made")
    return pledge, made or pledge.saved_card_id == saved_card.pk


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
    pledge.campaign = campaign
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
    PLEDGE_MACHINE.note(
        pledge,
        actor=user,
        note=f"Changed to {money(amount, campaign.currency)}"
        + (f" for “{tier.title}”" if tier else " with no reward"),
    )
    from crowdfunding.receipts import pledge_receipt

    pledge_receipt(pledge=pledge, what="changed")
    return pledge


@transaction.atomic
def pledge_cancel(*, pledge: Pledge, user: User) -> Pledge:
    """Before the deadline: the engine cancels it; its share of the totals and its tier
    place are given back (the book's on_release)."""
    if pledge.user_id != user.pk:
        raise PermissionDenied
    if pledge.status == PledgeStatus.CANCELLED:
        return pledge
    # The campaign row first (as every pledge write), then the pledge.
    _campaign_count(pledge.campaign_id, amount_delta=Decimal("0"), backer_delta=0)
    try:
        pledge = lifecycle.commitment_cancel(
            book=PLEDGE_BOOK, commitment=pledge, user=user, reason="Cancelled"
        )
    except PermissionError as exc:
        raise PermissionDenied from exc
    from crowdfunding.receipts import pledge_receipt

    pledge_receipt(pledge=pledge, what="cancelled")
    return pledge


def pledge_pay_again(
    *, pledge: Pledge, user: User, saved_card: SavedCard | None, card: dict | None = None
) -> Payment:
    """In the fix-payment window after a declined charge: pay with another card (the
    engine's pay again; its listener records the outcome, a paid pledge stays paid)."""
    try:
        return lifecycle.commitment_pay_again(
            book=PLEDGE_BOOK, commitment=pledge, user=user, saved_card=saved_card, card_input=card
        )
    except PermissionError as exc:
        raise PermissionDenied from exc


def pledges_grace_sweep() -> tuple[int, int]:
    """Beat: the engine's fix-payment window (reminders, then the pledge dropped and its
    share given back). Returns (reminded, released)."""
    return lifecycle.commitments_grace_sweep(book=PLEDGE_BOOK)


# --- tickets ----------------------------------------------------------------------------------


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
    PLEDGE_MACHINE.note(ticket.pledge, actor=actor, note=f"Ticket {ticket.code} checked in")
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
