"""The campaign's book for the commitments engine (payments.commitments): only its
decisions and its words. The engine does intake under the campaign's row lock, the close,
the chunked, paced, exactly-once charging, the fix-payment window with its reminders, pay
again, release and the finish.

Decisions: the goal is met (or, flexible, somebody pledged); each pledge owes its amount;
a charged pledge becomes a paid order (a shipped reward of a variant) or a ticket (a right
or an experience), and earns its backer points and the badge; a pledge cancelled or dropped
gives back its share of the totals and its place in a limited tier."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from crowdfunding.models import (
    CAMPAIGN_MACHINE,
    PLEDGE_MACHINE,
    Campaign,
    CampaignFollower,
    CampaignStatus,
    Pledge,
    RewardKind,
    RewardTicket,
    RewardTier,
)
from notifications.models import NotificationKind
from notifications.services import notification_fan_out
from orders.models import Order
from orders.services import PaidOrderSpec, orders_create_paid
from payments.commitments.book import CommitmentBook
from rowsql.update import rows_update

SETTLEMENT_KIND = "pledge"
SHIPPING_METHOD = "campaign"
ADDRESS_FIELDS = ("full_name", "line1", "line2", "city", "postal_code", "country", "phone")
TICKET_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud at a door


def ticket_code() -> str:
    import secrets

    return "".join(secrets.choice(TICKET_ALPHABET) for _ in range(10))


def _ticket_for(pledge: Pledge) -> RewardTicket:
    existing = RewardTicket.objects.filter(pledge=pledge).first()
    if existing:
        return existing
    for _attempt in range(5):
        try:
            with transaction.atomic():
                return RewardTicket.objects.create(pledge=pledge, code=ticket_code())
        except IntegrityError:  # a code drawn twice (1 in 32**10): draw again
            continue
    raise RuntimeError("could not draw a unique ticket code")


def campaign_give_back(*, pledge: Pledge) -> None:
    """A counted pledge stops counting: its amount, its backer and its tier place."""
    Campaign.objects.filter(pk=pledge.campaign_id).update(
        pledged_total=F("pledged_total") - pledge.amount, backer_count=F("backer_count") - 1
    )
    if pledge.tier_id is not None:
        RewardTier.objects.filter(pk=pledge.tier_id, claimed__gt=0).update(claimed=F("claimed") - 1)


def tell_followers(campaign: Campaign, *, title: str, body: str = "") -> None:
    followers = list(
        CampaignFollower.objects.filter(campaign=campaign).values_list("user_id", flat=True)
    )
    if followers:
        notification_fan_out(
            recipient_ids=followers,
            kind=NotificationKind.CAMPAIGN,
            title=title,
            body=body,
            url=campaign.get_absolute_url(),
        )


class PledgeBook(CommitmentBook):
    kind = SETTLEMENT_KIND
    model = Pledge
    parent_model = Campaign
    parent_field = "campaign_id"
    commitments_name = "pledges"
    machine = PLEDGE_MACHINE
    parent_machine = CAMPAIGN_MACHINE
    charge_prefix = "pledge"
    deposit_prefix = "pledge-deposit"
    email_templates = "crowdfunding/email"
    notification_kind = NotificationKind.CAMPAIGN
    urls = {"pay": "crowdfunding:pledge_pay", "authenticate": "crowdfunding:pledge_authenticate"}
    parent_related = ("brand", "community")
    related_for_lock = ("campaign",)
    related_for_pay = ("campaign", "saved_card", "user")
    statuses = {
        "open": CampaignStatus.LIVE,
        "settling": CampaignStatus.SETTLING,
        "cancelling": CampaignStatus.FAILING,
        "succeeded": CampaignStatus.SUCCESSFUL,
        "failed": CampaignStatus.FAILED,
    }
    texts = {
        **CommitmentBook.texts,
        "payment_failed_subject": "Your pledge to {parent.title} needs a payment",
        "reminder_subject": "Reminder: your pledge to {parent.title} needs a payment",
        "released_title": "Your pledge to {parent.title} was dropped",
        "released_body": "The payment was not completed in time.",
        "released_at_cancel_note": "Campaign not funded; nobody is charged",
        "grace_released_note": "Not paid within the fix-payment window",
        "cannot_cancel": "This pledge can no longer be cancelled.",
        "closed": "This campaign is not taking pledges now.",
        "no_payment_needed": "This pledge does not need a payment.",
        "window_over": "The time to pay for this pledge has run out.",
    }

    # --- decisions

    def threshold_met(self, parent: Campaign) -> bool:
        if parent.is_flexible:  # keep what is raised, but a campaign nobody backed fails
            return parent.backer_count > 0
        return parent.pledged_total >= parent.goal

    def amount_expression(self, parent: Campaign):
        return F("amount")

    def is_due(self, parent: Campaign) -> bool:
        return parent.deadline <= timezone.now()

    def on_close(self, parent: Campaign, *, succeeded: bool) -> str:
        from formatting.formats import money

        raised = money(parent.pledged_total, parent.currency)
        goal = money(parent.goal, parent.currency)
        return f"Raised {raised} of {goal}: " + ("charging" if succeeded else "releasing")

    def charged_become(self, parent: Campaign, commitments: list[Pledge]) -> None:
        """Paid orders for shipped rewards of a variant, tickets for rights and experiences,
        points and the backer badge in the campaign's community."""
        from crowdfunding.honour import pledges_honour_award

        tiers = RewardTier.objects.select_related("variant__product").in_bulk(
            {p.tier_id for p in commitments if p.tier_id}
        )
        for pledge in commitments:
            pledge.campaign = parent
            pledge.tier = tiers.get(pledge.tier_id)
        shipped = [
            p
            for p in commitments
            if p.tier and p.tier.kind == RewardKind.SHIPPED and p.tier.variant and not p.order_id
        ]
        specs = [
            PaidOrderSpec(
                user_id=p.user_id,
                email=p.user.email,
                variant=p.tier.variant,
                unit_price=p.amount_charged or p.amount,
                quantity=1,
                address={
                    key: getattr(p, "ship_name" if key == "full_name" else f"ship_{key}")
                    for key in ADDRESS_FIELDS
                },
                paid_through=p.payment_reference,
                note=f"Campaign {parent.title}: reward “{p.tier.title}”",
            )
            for p in shipped
        ]
        order_ids = orders_create_paid(specs=specs, shipping_method=SHIPPING_METHOD)
        orders = Order.objects.in_bulk(order_ids)  # for the receipts
        for pledge, order_id in zip(shipped, order_ids, strict=True):
            pledge.order = orders[order_id]
        if shipped:
            rows_update(model=Pledge, fields=["order"], rows=[(p.pk, p.order_id) for p in shipped])
        for pledge in commitments:
            if pledge.tier and pledge.tier.kind == RewardKind.EXPERIENCE:
                _ticket_for(pledge)
        pledges_honour_award(pledges=commitments)

    def on_commit(self, commitment: Pledge) -> None:
        from crowdfunding.services import pledge_committed

        pledge_committed(pledge=commitment)

    def on_paid_again(self, commitment: Pledge, payment) -> None:
        self.charged_receipts([commitment], {commitment.pk: payment})

    def on_release(self, commitment: Pledge, *, counted: bool) -> None:
        if counted:
            campaign_give_back(pledge=commitment)

    def on_finish(self, parent: Campaign, *, succeeded: bool) -> tuple[str, str]:
        if succeeded:
            title = _("%(title)s is funded!") % {"title": parent.title}
            body = _("Thank you, backers: the rewards are on their way.")
        else:
            title = _("%(title)s was not funded") % {"title": parent.title}
            body = _("Nobody is charged.")
        tell_followers(parent, title=title, body=body)
        return title, body

    def finish_note(self, parent: Campaign, *, succeeded: bool) -> str:
        if not succeeded:
            return "All pledges released"
        paid = parent.pledges.filter(status="charged").values_list("amount_charged", flat=True)
        return f"{sum(paid, Decimal('0'))} collected"

    def grace_period(self) -> timedelta:
        return timedelta(days=settings.CROWDFUNDING_GRACE_DAYS)

    def reminder_every(self) -> timedelta:
        return timedelta(hours=settings.CROWDFUNDING_REMINDER_HOURS)

    # --- words

    def email_context(self, commitment: Pledge) -> dict:
        campaign = self.parent_of(commitment)
        return {
            "commitment": commitment,
            "parent": campaign,
            "pledge": commitment,
            "campaign": campaign,
        }

    def charged_receipts(self, commitments: list[Pledge], payments: dict) -> None:
        from crowdfunding.receipts import charged_receipts

        charged_receipts(pledges=commitments, payments=payments)


PLEDGE_BOOK = PledgeBook()
