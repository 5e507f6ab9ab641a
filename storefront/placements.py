"""What marketing's placements need of the apps on its own layer (it may not import them):
pre-order batches and campaigns as targets, reservations and pledges as steps of the
funnel. Registered in
StorefrontConfig.ready()."""

from __future__ import annotations

from django.db.models import F
from django.utils.translation import gettext_lazy as _

from crowdfunding.models import Campaign, Pledge
from marketing.selectors import funnel_step_register
from marketing.targets import TargetKind, target_kind_register
from payments.commitments.models import COUNTED_STATUSES as PLEDGE_COUNTED
from preorders.models import COUNTED_STATUSES, PreorderBatch, Reservation


def _batch_resolve(pk: int):
    batch = PreorderBatch.objects.select_related("product").filter(pk=pk).first()
    return (batch.get_absolute_url(), batch.product.brand_id) if batch else None


def _batch_choices(brand_ids: list[int]) -> list[tuple[int, str]]:
    return list(
        PreorderBatch.objects.filter(product__brand_id__in=brand_ids)
        .order_by("-id")
        .values_list("pk", "title")
    )


def _reservations(placement) -> int:
    """The fans' reservations in the brand's batches after their first scan."""
    return Reservation.objects.filter(
        batch__product__brand_id=placement.brand_id,
        status__in=COUNTED_STATUSES,
        user__placement_visits__placement=placement,
        created_at__gte=F("user__placement_visits__first_scan_at"),
    ).count()


def _campaign_resolve(pk: int):
    campaign = Campaign.objects.filter(pk=pk).first()
    return (campaign.get_absolute_url(), campaign.brand_id) if campaign else None


def _campaign_choices(brand_ids: list[int]) -> list[tuple[int, str]]:
    return list(
        Campaign.objects.filter(brand_id__in=brand_ids).order_by("-id").values_list("pk", "title")
    )


def _pledges(placement) -> int:
    """The fans' pledges to the brand's campaigns after their first scan."""
    return Pledge.objects.filter(
        campaign__brand_id=placement.brand_id,
        status__in=PLEDGE_COUNTED,
        user__placement_visits__placement=placement,
        created_at__gte=F("user__placement_visits__first_scan_at"),
    ).count()


def placements_register() -> None:
    target_kind_register(
        TargetKind("batch", str(_("Pre-order batch")), _batch_choices, _batch_resolve)
    )
    target_kind_register(
        TargetKind("campaign", str(_("Campaign")), _campaign_choices, _campaign_resolve)
    )
    funnel_step_register("reservations", str(_("Pre-order reservations")), _reservations)
    funnel_step_register("pledges", str(_("Campaign pledges")), _pledges)
