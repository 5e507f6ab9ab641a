"""Pre-order batches and reservations for tests, made through the real services."""

import uuid
from datetime import date, timedelta
from decimal import Decimal

from django.utils import timezone

from payments.services import card_save
from preorders.models import BatchStatus, PreorderBatch, PriceTier
from preorders.services import reservation_create, reservation_deposit_pay
from tests.factories import ProductFactory, UserFactory, VariantFactory
from tests.shop import ADDRESS, CARD_OK

CARD_DECLINED_ON_CHARGE = {**CARD_OK, "number": "4000000000000341"}
CARD_NEEDS_AUTH = {**CARD_OK, "number": "4000002760003184"}
LADDER = [(1, "199.00"), (10, "179.00"), (50, "159.00")]


def batch_open(
    *,
    min_quantity: int = 5,
    cap: int | None = None,
    per_customer_limit: int = 5,
    ladder=LADDER,
    deposit: str = "0.00",
    deposit_refundable: bool = True,
    close_when_full: bool = False,
    closes_in: timedelta = timedelta(days=7),
    variants: int = 2,
    product=None,
) -> PreorderBatch:
    product = product or ProductFactory()
    if not product.variants.exists():
        for index in range(variants):
            VariantFactory(product=product, options={"colour": f"Colour {index}"})
    now = timezone.now()
    batch = PreorderBatch.objects.create(
        product=product,
        title=f"{product.name} first batch",
        slug=f"{product.slug}-batch-{uuid.uuid4().hex[:6]}",
        status=BatchStatus.OPEN,
        opens_at=now - timedelta(minutes=5),
        closes_at=now + closes_in,
        min_quantity=min_quantity,
        cap=cap,
        per_customer_limit=per_customer_limit,
        close_when_full=close_when_full,
        estimated_ship_date=date.today() + timedelta(days=60),
        deposit_per_unit=Decimal(deposit),
        deposit_refundable=deposit_refundable,
    )
    PriceTier.objects.bulk_create(
        [PriceTier(batch=batch, min_quantity=q, unit_price=Decimal(p)) for q, p in ladder]
    )
    return batch


def reserve(*, batch, user=None, quantity: int = 1, card=CARD_OK, variant=None, card_obj=None):
    user = user or UserFactory()
    saved = card_obj or card_save(user=user, card=card)
    variant = variant or batch.product.variants.first()
    reservation = reservation_create(
        batch=batch,
        user=user,
        variant=variant,
        quantity=quantity,
        saved_card=saved,
        address=ADDRESS,
        request_key=uuid.uuid4().hex,
    )
    if batch.deposit_per_unit:
        reservation_deposit_pay(reservation=reservation)
        reservation.refresh_from_db()
    return reservation
