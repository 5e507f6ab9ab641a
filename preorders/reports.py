"""Reads for the operators' reports on a pre-order batch: what to make, per variant.

`production_report` is one aggregate query over the product's variants, whatever the number
of reservations; the admin's report page and its CSV download both use it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import DecimalField, F, FilteredRelation, Q, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from catalog.exports import csv_safe
from catalog.models import Variant
from preorders.models import PreorderBatch, Reservation, ReservationStatus

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class ProductionLine:
    variant_id: int | None  # None on the totals line
    sku: str
    option_label: str
    paid_units: int  # charged: make these
    paid_amount: Decimal  # what those units sold for (ladder price x units, deposits included)
    awaiting_units: int  # payment failed, still within the grace period to pay
    open_units: int  # reserved and not charged yet (the batch is open or settling)

    @property
    def planned_units(self) -> int:
        """Paid, plus those that may still pay."""
        return self.paid_units + self.awaiting_units


def production_report(*, batch: PreorderBatch) -> list[ProductionLine]:
    """Per variant of the batch's product: units paid, units awaiting payment, units not
    charged yet. Variants that are inactive and hold nothing in this batch are left out.
    One query: the variants, left-joined to this batch's reservations only (the join's
    condition, so the (batch, status) index serves it), summed per variant."""
    now = timezone.now()
    money = DecimalField(max_digits=14, decimal_places=2)
    paid = Q(in_batch__status=ReservationStatus.CHARGED)
    rows = (
        Variant.objects.filter(product_id=batch.product_id)
        .annotate(in_batch=FilteredRelation("reservations", condition=Q(reservations__batch=batch)))
        .annotate(
            paid_units=Sum("in_batch__quantity", filter=paid, default=0),
            paid_amount=Coalesce(
                Sum(
                    F("in_batch__quantity") * F("in_batch__unit_price"),
                    filter=paid,
                    output_field=money,
                ),
                Value(ZERO, output_field=money),
            ),
            awaiting_units=Sum(
                "in_batch__quantity",
                filter=Q(
                    in_batch__status=ReservationStatus.PAYMENT_FAILED, in_batch__grace_until__gt=now
                ),
                default=0,
            ),
            open_units=Sum(
                "in_batch__quantity",
                filter=Q(in_batch__status__in=[ReservationStatus.HELD, ReservationStatus.CHARGING]),
                default=0,
            ),
        )
        .filter(
            Q(is_active=True) | Q(paid_units__gt=0) | Q(awaiting_units__gt=0) | Q(open_units__gt=0)
        )
        .order_by("position", "id")
        .values_list(
            "pk", "sku", "options", "paid_units", "paid_amount", "awaiting_units", "open_units"
        )
    )
    return [
        ProductionLine(
            variant_id=pk,
            sku=sku,
            option_label=Variant(options=options or {}).option_label,
            paid_units=paid,
            paid_amount=amount,
            awaiting_units=awaiting,
            open_units=still_open,
        )
        for pk, sku, options, paid, amount, awaiting, still_open in rows
    ]


def production_report_totals(*, lines: Iterable[ProductionLine]) -> ProductionLine:
    lines = list(lines)
    return ProductionLine(
        variant_id=None,
        sku="",
        option_label="Total",
        paid_units=sum(line.paid_units for line in lines),
        paid_amount=sum((line.paid_amount for line in lines), ZERO),
        awaiting_units=sum(line.awaiting_units for line in lines),
        open_units=sum(line.open_units for line in lines),
    )


PRODUCTION_CSV_HEADER = [
    "sku",
    "option",
    "units_paid",
    "amount_paid",
    "units_awaiting_payment",
    "units_not_charged_yet",
]


def production_csv_rows(*, lines: list[ProductionLine]) -> Iterator[list]:
    """The production report as CSV rows: a header, one row per variant, a totals row."""
    yield PRODUCTION_CSV_HEADER
    for line in [*lines, production_report_totals(lines=lines)]:
        yield csv_safe(
            [
                line.sku,
                line.option_label,
                line.paid_units,
                line.paid_amount,
                line.awaiting_units,
                line.open_units,
            ]
        )


def production_export(*, brand, params: dict) -> tuple[int, Iterator[list]]:
    """The production report of one batch of `brand`, for a worker's export job
    (catalog.exports): another brand's batch exports nothing but the header."""
    batch = PreorderBatch.objects.filter(pk=params.get("batch_id"), product__brand=brand).first()
    if batch is None:
        return 0, iter([PRODUCTION_CSV_HEADER])
    lines = production_report(batch=batch)  # one query, a line per variant
    return len(lines) + 1, production_csv_rows(lines=lines)  # and the totals row


# --- reservations, for the admin's CSV export ----------------------------------------------

RESERVATION_CSV_HEADER = [
    "id",
    "created_at",
    "email",
    "batch",
    "sku",
    "option",
    "quantity",
    "status",
    "unit_price",
    "amount_charged",
    "deposit_paid",
    "deposit_refunded",
    "order",
    "ship_name",
    "ship_line1",
    "ship_line2",
    "ship_city",
    "ship_postal_code",
    "ship_country",
    "ship_phone",
]


def reservations_csv_rows(*, reservations) -> Iterator[list]:
    """The header, then one row per reservation of the (already scoped) queryset, read in
    chunks with what each row shows joined in."""
    yield RESERVATION_CSV_HEADER
    queryset = reservations.select_related("user", "batch", "variant", "order").order_by("pk")
    for r in queryset.iterator(chunk_size=2000):
        yield csv_safe(
            [
                r.pk,
                r.created_at.isoformat(),
                r.user.email,
                r.batch.slug,
                r.variant.sku,
                r.variant.option_label,
                r.quantity,
                r.status,
                r.unit_price if r.unit_price is not None else "",
                r.amount_charged if r.amount_charged is not None else "",
                r.deposit_paid,
                r.deposit_refunded,
                r.order.number if r.order_id else "",
                r.ship_name,
                r.ship_line1,
                r.ship_line2,
                r.ship_city,
                r.ship_postal_code,
                r.ship_country,
                r.ship_phone,
            ]
        )


def reservations_export(*, brand, params: dict) -> tuple[int, Iterator[list]]:
    """The reservations CSV of the selected ids, scoped to `brand`, for a worker's export
    job (catalog.exports)."""
    reservations = Reservation.objects.filter(
        pk__in=params.get("ids", []), batch__product__brand=brand
    )
    return reservations.count(), reservations_csv_rows(reservations=reservations)
