"""The pre-order batch's book for the shared settlement engine (payments.settlement): which
reservations are open, how a charge's outcome moves them, and how a batch finishes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Max, Min, Q, Sum
from django.utils import timezone

from formatting.formats import money
from notifications.models import NotificationKind
from notifications.services import notification_fan_out
from payments.commitments.book import CommitmentBook
from payments.pacing import ProviderPacer
from payments.providers.base import ChargeOutcome
from payments.settlement import ChargeRecord, Commitment, Mode
from preorders.models import (
    BATCH_MACHINE,
    RESERVATION_MACHINE,
    BatchStatus,
    PreorderBatch,
    PreorderEvent,
    Reservation,
    ReservationStatus,
)
from preorders.receipts import charged_receipts
from preorders.services import (
    SETTLEMENT_KIND,
    batch_transition,
    deposit_refund_all,
    payment_failed_email,
    reservations_make_orders,
)
from rowsql.update import rows_update

RECORD_COLUMNS = (
    "id",
    "batch_id",
    "status",
    "quantity",
    "unit_price",
    "amount_charged",
    "deposit_paid",
    "failure_message",
    "grace_until",
    "reminded_at",
    "order_id",
    "updated_at",
    *(f"ship_{name}" for name in ("name", "line1", "line2", "city", "postal_code", "country")),
    "ship_phone",
    "user__email",
    "variant__sku",
    "variant__options",
    "variant__product__name",
    "variant__product__brand_id",
)


class ReservationBook(CommitmentBook):
    kind = SETTLEMENT_KIND
    model = Reservation
    parent_model = PreorderBatch
    parent_field = "batch_id"
    commitments_name = "reservations"
    open_statuses = (ReservationStatus.HELD.value, ReservationStatus.CHARGING.value)
    machine = RESERVATION_MACHINE
    parent_machine = BATCH_MACHINE
    charge_prefix = "preorder-res"
    deposit_prefix = "preorder-deposit"
    email_templates = "preorders/email"
    notification_kind = NotificationKind.PREORDER

    def mode(self, *, parent_id: int) -> Mode | None:
        status = PreorderBatch.objects.filter(pk=parent_id).values_list("status", flat=True)
        return {BatchStatus.SETTLING: "charge", BatchStatus.CANCELLING: "release"}.get(
            status.first()
        )

    def id_bounds(self, *, parent_id: int) -> tuple[int, int] | None:
        bounds = Reservation.objects.filter(
            batch_id=parent_id, status__in=self.open_statuses
        ).aggregate(first=Min("id"), last=Max("id"))
        if bounds["first"] is None:
            return None
        return bounds["first"], bounds["last"]

    def charging_begin(self, *, parent_id: int, ids: Sequence[int]) -> list[Commitment]:
        batch = PreorderBatch.objects.get(pk=parent_id)
        started = timezone.now()
        # What is owed: the ladder price for every unit, less the deposit kept.
        Reservation.objects.filter(pk__in=ids, status=ReservationStatus.HELD).update(
            status=ReservationStatus.CHARGING,
            charging_at=started,
            unit_price=batch.final_unit_price,
            amount_charged=F("quantity") * batch.final_unit_price
            - (F("deposit_paid") - F("deposit_refunded")),
            updated_at=started,
        )
        rows = Reservation.objects.filter(
            pk__in=ids, status=ReservationStatus.CHARGING
        ).values_list("pk", "user_id", "saved_card_id", "amount_charged", "charging_at")
        return [
            Commitment(
                id=pk,
                user_id=user_id,
                saved_card_id=card_id,
                amount=amount,
                currency=batch.currency,
                reference=f"preorder-res:{pk}",
                idempotency_key=f"preorder-res-{pk}",
                resumed=charging_at < started,
            )
            for pk, user_id, card_id, amount, charging_at in rows
        ]

    def charging_record(self, *, parent_id: int, records: Sequence[ChargeRecord]) -> None:
        by_id = {record.commitment.id: record for record in records}
        batch = PreorderBatch.objects.select_related("product").get(pk=parent_id)
        reservations = list(
            # Only the reservations' rows are locked, not the users or variants joined; and
            # only the columns the orders and emails need (a product's are long texts).
            Reservation.objects.select_for_update(of=("self",))
            .filter(pk__in=by_id, status=ReservationStatus.CHARGING)
            .select_related("variant__product", "user")
            .only(*RECORD_COLUMNS)
            .order_by("pk")
        )
        for reservation in reservations:
            reservation.batch = batch
        now = timezone.now()
        grace = now + timedelta(days=settings.PREORDER_GRACE_DAYS)
        paid, failed, retry, events = [], [], [], []
        for reservation in reservations:
            reservation.updated_at = now
            record = by_id[reservation.pk]
            before = ReservationStatus.HELD  # charging is the engine's, not shown as a step
            if record.outcome == ChargeOutcome.SUCCEEDED:
                reservation.status = ReservationStatus.CHARGED
                note = f"Charged {money(record.payment.amount, record.payment.currency)}"
                paid.append(reservation)
            elif record.outcome == ChargeOutcome.ERROR:
                reservation.status = ReservationStatus.HELD
                retry.append(reservation)
                continue
            else:
                reservation.status = ReservationStatus.PAYMENT_FAILED
                reservation.failure_message = record.payment.failure_message or (
                    "Your bank asks you to confirm this payment."
                )
                reservation.grace_until, reservation.reminded_at = grace, now
                note = f"Charge failed: {reservation.failure_message}"
                failed.append(reservation)
            events.append(
                PreorderEvent(
                    batch_id=parent_id,
                    reservation=reservation,
                    from_status=before,
                    to_status=reservation.status,
                    note=note[:300],
                )
            )
        rows_update(
            model=Reservation,
            fields=["status", "failure_message", "grace_until", "reminded_at", "updated_at"],
            rows=[
                (r.pk, r.status, r.failure_message, r.grace_until, r.reminded_at, now)
                for r in reservations
            ],
        )
        PreorderEvent.objects.bulk_create(events)
        reservations_make_orders(reservations=paid)
        charged_receipts(reservations=paid, payments={r.pk: by_id[r.pk].payment for r in paid})
        for reservation in failed:
            payment_failed_email(reservation=reservation)

    def release(self, *, parent_id: int, ids: Sequence[int], pacer: ProviderPacer) -> None:
        for pk in ids:
            with transaction.atomic():
                reservation = (
                    Reservation.objects.select_for_update()
                    .filter(pk=pk, status=ReservationStatus.HELD)
                    .first()
                )
                if reservation is None:
                    continue
                note = "Batch cancelled; nobody is charged"
                if reservation.deposit_paid > reservation.deposit_refunded:
                    pacer.take()
                    done = deposit_refund_all(reservation=reservation, reason=note)
                    note += f"; {done.note}" if done.note else ""
                PreorderEvent.objects.create(
                    batch_id=parent_id,
                    reservation=reservation,
                    from_status=reservation.status,
                    to_status=ReservationStatus.RELEASED,
                    note=note,
                )
                Reservation.objects.filter(pk=pk).update(
                    status=ReservationStatus.RELEASED, updated_at=timezone.now()
                )

    @transaction.atomic
    def finish_if_done(self, *, parent_id: int) -> bool:
        batch = (
            PreorderBatch.objects.select_for_update()
            .select_related("product")
            .filter(pk=parent_id)
            .first()
        )
        if batch is None or batch.status not in (BatchStatus.SETTLING, BatchStatus.CANCELLING):
            return False
        if batch.reservations.filter(status__in=self.open_statuses).exists():
            return False
        counted = batch.reservations.exclude(
            status__in=[ReservationStatus.CANCELLED, ReservationStatus.RELEASED]
        )
        if batch.status == BatchStatus.SETTLING:
            paid = (
                counted.filter(status=ReservationStatus.CHARGED).aggregate(units=Sum("quantity"))[
                    "units"
                ]
                or 0
            )
            batch.settled_at = timezone.now()
            batch.save(update_fields=["settled_at"])
            batch_transition(
                batch=batch,
                to=BatchStatus.CONFIRMED,
                actor=None,
                note=f"{paid} units paid; production confirmed",
            )
            title = f"{batch.title} is confirmed: production starts"
            body = f"Everyone pays {money(batch.final_unit_price, batch.currency)} per unit."
            from preorders.tasks import batch_honour_award

            batch_honour_award.delay_on_commit(batch.pk)
        else:
            batch_transition(
                batch=batch,
                to=BatchStatus.CANCELLED,
                actor=None,
                note="All reservations released",
            )
            title = f"{batch.title} did not reach its minimum"
            body = "Nobody is charged; any deposit has been refunded."
        notification_fan_out(
            recipient_ids=batch.reservations.values_list("user_id", flat=True).distinct(),
            kind=NotificationKind.PREORDER,
            title=title,
            body=body,
            url=batch.get_absolute_url(),
        )
        return True

    def active_parent_ids(self) -> list[int]:
        return list(
            PreorderBatch.objects.filter(
                status__in=[BatchStatus.SETTLING, BatchStatus.CANCELLING]
            ).values_list("pk", flat=True)
        )

    def stalled_parent_ids(self, *, quiet_for: timedelta) -> list[int]:
        quiet_since = timezone.now() - quiet_for
        return list(
            PreorderBatch.objects.filter(
                status__in=[BatchStatus.SETTLING, BatchStatus.CANCELLING],
                closed_at__lte=quiet_since,
            )
            .annotate(last_move=Max("reservations__updated_at"))
            .filter(Q(last_move__lte=quiet_since) | Q(last_move__isnull=True))
            .values_list("pk", flat=True)
        )
