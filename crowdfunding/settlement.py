"""The campaign's book for the shared settlement engine (payments.settlement): which pledges
are open, what each is charged (its amount), what a charged pledge becomes (an order for a
shipped reward with a variant, a ticket for a right or an experience), and how a campaign
finishes. The engine does the chunking, pacing, locking and exactly-once charging."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Max, Min, Q, Sum
from django.db.utils import IntegrityError
from django.utils import timezone
from django.utils.translation import gettext as _

from crowdfunding.models import (
    Campaign,
    CampaignEvent,
    CampaignStatus,
    Pledge,
    PledgeStatus,
    RewardKind,
    RewardTicket,
)
from crowdfunding.services import (
    ADDRESS_FIELDS,
    SETTLEMENT_KIND,
    SHIPPING_METHOD,
    _tell_followers,
    campaign_transition,
    ticket_code,
)
from formatting.formats import money
from orders.services import PaidOrderSpec, orders_create_paid
from payments.models import Payment
from payments.pacing import ProviderPacer
from payments.providers.base import ChargeOutcome
from payments.settlement import ChargeRecord, Commitment, Mode
from rowsql.update import rows_update


def pledges_fulfil(*, pledges: list[Pledge], payments: dict[int, Payment]) -> None:
    """What charged pledges become, in the caller's transaction: orders for shipped rewards
    of a variant, tickets for rights and experiences, a receipt each, and the backer's honour.
    Pledges come with their campaign, tier (variant, product) and user."""
    from crowdfunding.honour import pledges_honour_award
    from crowdfunding.receipts import charged_receipts

    shipped = [
        p for p in pledges if p.tier and p.tier.kind == RewardKind.SHIPPED and p.tier.variant
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
            note=f"Campaign {p.campaign.title}: reward “{p.tier.title}”",
        )
        for p in shipped
    ]
    orders = orders_create_paid(specs=specs, shipping_method=SHIPPING_METHOD)
    for pledge, order in zip(shipped, orders, strict=True):
        pledge.order = order
    if shipped:
        rows_update(model=Pledge, fields=["order"], rows=[(p.pk, p.order_id) for p in shipped])
    for pledge in pledges:
        if pledge.tier and pledge.tier.kind == RewardKind.EXPERIENCE:
            _ticket_for(pledge)
    charged_receipts(pledges=pledges, payments=payments)
    pledges_honour_award(pledges=pledges)


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


RECORD_COLUMNS = (
    "id",
    "campaign_id",
    "user_id",
    "tier_id",
    "status",
    "amount",
    "amount_charged",
    "failure_message",
    "grace_until",
    "reminded_at",
    "order_id",
    "updated_at",
    *(f"ship_{name}" for name in ("name", "line1", "line2", "city", "postal_code", "country")),
    "ship_phone",
    "user",
    "tier__title",
    "tier__kind",
    "tier__variant_id",
    "tier__variant__sku",
    "tier__variant__options",
    "tier__variant__product__name",
    "tier__variant__product__brand_id",
)


class PledgeBook:
    kind = SETTLEMENT_KIND
    lock_namespace = 7201
    model = Pledge
    parent_field = "campaign_id"
    open_statuses = (PledgeStatus.HELD.value, PledgeStatus.CHARGING.value)

    def mode(self, *, parent_id: int) -> Mode | None:
        status = Campaign.objects.filter(pk=parent_id).values_list("status", flat=True).first()
        return {CampaignStatus.SETTLING: "charge", CampaignStatus.FAILING: "release"}.get(status)

    def id_bounds(self, *, parent_id: int) -> tuple[int, int] | None:
        bounds = Pledge.objects.filter(
            campaign_id=parent_id, status__in=self.open_statuses
        ).aggregate(first=Min("id"), last=Max("id"))
        if bounds["first"] is None:
            return None
        return bounds["first"], bounds["last"]

    def charging_begin(self, *, parent_id: int, ids: Sequence[int]) -> list[Commitment]:
        currency = Campaign.objects.values_list("currency", flat=True).get(pk=parent_id)
        started = timezone.now()
        Pledge.objects.filter(pk__in=ids, status=PledgeStatus.HELD).update(
            status=PledgeStatus.CHARGING,
            charging_at=started,
            amount_charged=F("amount"),
            updated_at=started,
        )
        rows = Pledge.objects.filter(pk__in=ids, status=PledgeStatus.CHARGING).values_list(
            "pk", "user_id", "saved_card_id", "amount_charged", "charging_at"
        )
        return [
            Commitment(
                id=pk,
                user_id=user_id,
                saved_card_id=card_id,
                amount=amount,
                currency=currency,
                reference=f"pledge:{pk}",
                idempotency_key=f"pledge-{pk}",
                resumed=charging_at < started,
            )
            for pk, user_id, card_id, amount, charging_at in rows
        ]

    def charging_record(self, *, parent_id: int, records: Sequence[ChargeRecord]) -> None:
        from crowdfunding.receipts import payment_failed_email

        by_id = {record.commitment.id: record for record in records}
        campaign = Campaign.objects.get(pk=parent_id)
        pledges = list(
            Pledge.objects.select_for_update(of=("self",))
            .filter(pk__in=by_id, status=PledgeStatus.CHARGING)
            .select_related("tier__variant__product", "user")
            .only(*RECORD_COLUMNS)
            .order_by("pk")
        )
        now = timezone.now()
        grace = now + timedelta(days=settings.CROWDFUNDING_GRACE_DAYS)
        paid, failed, events = [], [], []
        for pledge in pledges:
            pledge.campaign = campaign
            pledge.updated_at = now
            record = by_id[pledge.pk]
            if record.outcome == ChargeOutcome.SUCCEEDED:
                pledge.status = PledgeStatus.CHARGED
                note = f"Charged {money(record.payment.amount, record.payment.currency)}"
                paid.append(pledge)
            elif record.outcome == ChargeOutcome.ERROR:
                pledge.status = PledgeStatus.HELD  # tried again by the next chunk run
                continue
            else:
                pledge.status = PledgeStatus.PAYMENT_FAILED
                pledge.failure_message = (
                    record.payment.failure_message
                    or _("Your bank asks you to confirm this payment.")
                )[:300]
                pledge.grace_until, pledge.reminded_at = grace, now
                note = f"Charge failed: {pledge.failure_message}"
                failed.append(pledge)
            events.append(
                CampaignEvent(
                    campaign_id=parent_id,
                    pledge=pledge,
                    from_status=PledgeStatus.HELD,
                    to_status=pledge.status,
                    note=note[:300],
                )
            )
        rows_update(
            model=Pledge,
            fields=["status", "failure_message", "grace_until", "reminded_at", "updated_at"],
            rows=[
                (p.pk, p.status, p.failure_message, p.grace_until, p.reminded_at, now)
                for p in pledges
            ],
        )
        CampaignEvent.objects.bulk_create(events)
        pledges_fulfil(pledges=paid, payments={p.pk: by_id[p.pk].payment for p in paid})
        for pledge in failed:
            payment_failed_email(pledge=pledge)

    def release(self, *, parent_id: int, ids: Sequence[int], pacer: ProviderPacer) -> None:
        """Nobody is charged: every held pledge released, in one statement per chunk."""
        with transaction.atomic():
            released = list(
                Pledge.objects.select_for_update()
                .filter(pk__in=ids, status=PledgeStatus.HELD)
                .values_list("pk", flat=True)
            )
            if not released:
                return
            Pledge.objects.filter(pk__in=released).update(
                status=PledgeStatus.RELEASED, updated_at=timezone.now()
            )
            CampaignEvent.objects.bulk_create(
                [
                    CampaignEvent(
                        campaign_id=parent_id,
                        pledge_id=pk,
                        from_status=PledgeStatus.HELD,
                        to_status=PledgeStatus.RELEASED,
                        note="Campaign not funded; nobody is charged",
                    )
                    for pk in released
                ]
            )

    @transaction.atomic
    def finish_if_done(self, *, parent_id: int) -> bool:
        campaign = Campaign.objects.select_for_update().filter(pk=parent_id).first()
        if campaign is None or campaign.status not in (
            CampaignStatus.SETTLING,
            CampaignStatus.FAILING,
        ):
            return False
        if campaign.pledges.filter(status__in=self.open_statuses).exists():
            return False
        campaign.settled_at = timezone.now()
        campaign.save(update_fields=["settled_at"])
        if campaign.status == CampaignStatus.SETTLING:
            paid = campaign.pledges.filter(status=PledgeStatus.CHARGED).aggregate(
                total=Sum("amount_charged")
            )["total"]
            campaign_transition(
                campaign=campaign,
                to=CampaignStatus.SUCCESSFUL,
                actor=None,
                note=f"{money(paid or 0, campaign.currency)} collected",
            )
            title = _("%(title)s is funded!") % {"title": campaign.title}
            body = _("Thank you, backers: the rewards are on their way.")
        else:
            campaign_transition(
                campaign=campaign,
                to=CampaignStatus.FAILED,
                actor=None,
                note="All pledges released",
            )
            title = _("%(title)s was not funded") % {"title": campaign.title}
            body = _("Nobody is charged.")
        _tell_followers(campaign, title=title, body=body, backers=True)
        return True

    def active_parent_ids(self) -> list[int]:
        return list(
            Campaign.objects.filter(
                status__in=[CampaignStatus.SETTLING, CampaignStatus.FAILING]
            ).values_list("pk", flat=True)
        )

    def stalled_parent_ids(self, *, quiet_for: timedelta) -> list[int]:
        quiet_since = timezone.now() - quiet_for
        return list(
            Campaign.objects.filter(
                status__in=[CampaignStatus.SETTLING, CampaignStatus.FAILING],
                closed_at__lte=quiet_since,
            )
            .annotate(last_move=Max("pledges__updated_at"))
            .filter(Q(last_move__lte=quiet_since) | Q(last_move__isnull=True))
            .values_list("pk", flat=True)
        )
