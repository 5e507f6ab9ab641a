"""Every read of the shopper's pre-order pages, with its joins and prefetches, so each page
runs a fixed number of queries however many batches, tiers or reservations it shows."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cached_property

from django.db import connection
from django.db.models import Case, F, IntegerField, Prefetch, Q, QuerySet, Value, When
from django.http import Http404, QueryDict
from django.utils import timezone

from accounts.models import User
from catalog.models import ProductImage, Variant
from communities.models import Community
from orders.models import Address
from orders.selectors import addresses_for
from payments.models import Payment, Refund, RefundStatus, SavedCard
from payments.providers.registry import provider_get
from preorders.batch_cache import batch_static
from preorders.honour import brand_community
from preorders.models import (
    BatchStatus,
    PreorderBatch,
    PreorderEvent,
    PriceTier,
    Reservation,
    ReservationStatus,
    WaitlistEntry,
    WaitlistStatus,
)
from preorders.services import ladder_price
from rowsql.arrays import prepared_cursor

# --- time in words --------------------------------------------------------------------------


def duration_words(seconds: int) -> str:
    """ "3 days 4 hours", "5 hours 12 minutes", "12 minutes": the two largest units."""
    if seconds < 60:
        return "less than a minute"
    minutes = seconds // 60
    parts = [
        (minutes // (60 * 24), "day"),
        (minutes // 60 % 24, "hour"),
        (minutes % 60, "minute"),
    ]
    while parts and parts[0][0] == 0:
        parts.pop(0)
    words = [f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in parts[:2] if n]
    return " ".join(words)


# --- progress ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TierStep:
    min_quantity: int
    unit_price: Decimal
    reached: bool
    current: bool
    reachable: bool


@dataclass(frozen=True)
class BatchProgress:
    """Where a batch stands, for the progress block (and its htmx fragment)."""

    reserved: int
    minimum: int
    cap: int | None
    available: int | None
    # Of the minimum until it is reached, then of the cap (when there is one).
    percent: int
    percent_of: str
    minimum_reached: bool
    price: Decimal | None
    lowest_price: Decimal | None
    next_price: Decimal | None
    units_to_next: int | None
    tiers: tuple[TierStep, ...]
    opens_at: datetime
    closes_at: datetime
    seconds_left: int
    seconds_to_open: int
    # upcoming, open, full, closing, settling, confirmed, cancelling, cancelled, fulfilled
    state: str

    @property
    def is_open(self) -> bool:
        """Taking reservations now (a full batch is open: freed units come back)."""
        return self.state in ("open", "full")

    @property
    def is_full(self) -> bool:
        return self.state == "full"

    @property
    def units_to_minimum(self) -> int:
        return max(self.minimum - self.reserved, 0)

    @property
    def bar_percent(self) -> int:
        return min(self.percent, 100)

    @property
    def time_left(self) -> str:
        return duration_words(self.seconds_left)

    @property
    def time_to_open(self) -> str:
        return duration_words(self.seconds_to_open)


def _state(batch: PreorderBatch, now: datetime) -> str:
    if batch.status == BatchStatus.SCHEDULED or (
        batch.status == BatchStatus.OPEN and now < batch.opens_at
    ):
        return "upcoming"
    if batch.status == BatchStatus.OPEN:
        if now >= batch.closes_at:
            return "closing"
        return "full" if batch.available_units == 0 else "open"
    return batch.status


def batch_progress(*, batch: PreorderBatch) -> BatchProgress:
    """The batch's numbers, from the batch row and its tiers (prefetch `tiers` to keep this
    free of queries)."""
    now = timezone.now()
    tiers = sorted(batch.tiers.all(), key=lambda tier: tier.min_quantity)
    reserved = batch.reserved_units
    price = ladder_price(tiers=tiers, units=reserved)
    current = None
    for tier in tiers:
        if reserved >= tier.min_quantity or tier is tiers[0]:
            current = tier
    upcoming = [
        tier
        for tier in tiers
        if tier.min_quantity > reserved and (batch.cap is None or tier.min_quantity <= batch.cap)
    ]
    following = upcoming[0] if upcoming else None
    minimum_reached = reserved >= batch.min_quantity
    if minimum_reached and batch.cap:
        percent, percent_of = reserved * 100 // batch.cap, "cap"
    else:
        percent, percent_of = reserved * 100 // batch.min_quantity, "minimum"
    return BatchProgress(
        reserved=reserved,
        minimum=batch.min_quantity,
        cap=batch.cap,
        available=batch.available_units,
        percent=percent,
        percent_of=percent_of,
        minimum_reached=minimum_reached,
        price=batch.final_unit_price or price,
        lowest_price=min((tier.unit_price for tier in tiers), default=None),
        next_price=following.unit_price if following else None,
        units_to_next=following.min_quantity - reserved if following else None,
        tiers=tuple(
            TierStep(
                min_quantity=tier.min_quantity,
                unit_price=tier.unit_price,
                reached=reserved >= tier.min_quantity,
                current=tier is current,
                reachable=batch.cap is None or tier.min_quantity <= batch.cap,
            )
            for tier in tiers
        ),
        opens_at=batch.opens_at,
        closes_at=batch.closes_at,
        seconds_left=max(int((batch.closes_at - now).total_seconds()), 0),
        seconds_to_open=max(int((batch.opens_at - now).total_seconds()), 0),
        state=_state(batch, now),
    )


# --- batches --------------------------------------------------------------------------------


def _ordered_tiers() -> Prefetch:
    return Prefetch("tiers", queryset=PriceTier.objects.order_by("min_quantity"))


def _product_images() -> Prefetch:
    return Prefetch(
        "product__images",
        queryset=ProductImage.objects.order_by("position", "id"),
        to_attr="ordered_images",
    )


def _active_variants() -> Prefetch:
    return Prefetch(
        "product__variants",
        queryset=Variant.objects.filter(is_active=True).order_by("position", "id"),
        to_attr="active_variants",
    )


def _shown() -> QuerySet[PreorderBatch]:
    """Every batch a shopper may see: all but drafts."""
    return PreorderBatch.objects.exclude(status=BatchStatus.DRAFT)


def batches_with_progress(batches: Iterable[PreorderBatch]) -> list[PreorderBatch]:
    """`batch.progress` on each (the batches come with their tiers prefetched)."""
    batches = list(batches)
    for batch in batches:
        batch.progress = batch_progress(batch=batch)
    return batches


def batches_listed() -> QuerySet[PreorderBatch]:
    """/preorders/: open batches (closing soonest first), then the upcoming ones."""
    now = timezone.now()
    return (
        _shown()
        .filter(
            Q(status=BatchStatus.OPEN, closes_at__gt=now) | Q(status=BatchStatus.SCHEDULED),
        )
        .annotate(
            upcoming=Case(
                When(status=BatchStatus.OPEN, opens_at__lte=now, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            ),
            sort_at=Case(When(status=BatchStatus.OPEN, then=F("closes_at")), default=F("opens_at")),
        )
        .select_related("product__brand")
        .prefetch_related(_ordered_tiers(), _product_images())
        .order_by("upcoming", "sort_at", "id")
    )


def batches_open(*, limit: int, brand_id: int | None = None) -> list[PreorderBatch]:
    """Open batches for the home page and a brand's pages, closing soonest first, each with
    its `progress`: three queries whatever the limit."""
    now = timezone.now()
    queryset = (
        _shown()
        .filter(status=BatchStatus.OPEN, opens_at__lte=now, closes_at__gt=now)
        .select_related("product__brand")
        .prefetch_related(_ordered_tiers(), _product_images())
        .order_by("closes_at", "id")
    )
    if brand_id is not None:
        queryset = queryset.filter(product__brand_id=brand_id)
    return batches_with_progress(queryset[:limit])


def batch_for_progress(*, slug: str) -> PreorderBatch:
    """A shown batch with its tiers only: what the polled progress block needs."""
    batch = _shown().prefetch_related(_ordered_tiers()).filter(slug=slug).first()
    if batch is None:
        raise Http404("No such pre-order batch")
    return batch


def batch_by_slug(*, slug: str) -> PreorderBatch:
    """A shown batch with its tiers and its product's active variants (404 for a draft)."""
    batch = (
        _shown()
        .select_related("product")
        .prefetch_related(_ordered_tiers(), _active_variants())
        .filter(slug=slug)
        .first()
    )
    if batch is None:
        raise Http404("No such pre-order batch")
    return batch


@dataclass
class BatchPage:
    batch: PreorderBatch
    progress: BatchProgress
    variants: list[Variant]
    images: list[ProductImage]
    community: Community | None
    my_reservations: list[Reservation]
    waitlist_entry: WaitlistEntry | None

    @property
    def has_offer(self) -> bool:
        return (
            self.waitlist_entry is not None
            and self.waitlist_entry.status == WaitlistStatus.OFFERED
            and self.waitlist_entry.offer_expires_at is not None
            and self.waitlist_entry.offer_expires_at > timezone.now()
        )

    @property
    def can_reserve(self) -> bool:
        return self.progress.state == "open" or (self.progress.is_full and self.has_offer)

    @property
    def shows_waitlist(self) -> bool:
        return self.progress.is_full and not self.has_offer


@dataclass(frozen=True)
class FanPart:
    """A signed-in fan's own part of a batch page: their reservations (newest first) and
    their waitlist place (waiting or offered), each with its option. `rows`: as read
    (`fan_part`); the instances are built only when asked for."""

    rows: tuple[tuple, ...] = ()
    batch_id: int | None = None
    user_id: int | None = None

    def _fields(self, row: tuple) -> dict:
        """What a reservation row and a waitlist row share, as model fields."""
        _, pk, status, quantity, created_at, _, variant_id, options = row
        return {
            "id": pk,
            "batch_id": self.batch_id,
            "user_id": self.user_id,
            "variant": Variant(id=variant_id, options=options),
            "status": status,
            "quantity": quantity,
            "created_at": created_at,
        }

    @cached_property
    def reservations(self) -> tuple[Reservation, ...]:
        return tuple(Reservation(**self._fields(row)) for row in self.rows if row[0] == "r")

    @cached_property
    def waitlist_entry(self) -> WaitlistEntry | None:
        for row in self.rows:
            if row[0] == "w":
                return WaitlistEntry(**self._fields(row), offer_expires_at=row[5])
        return None


def batch_for_page(*, slug: str, user: User, fan: FanPart | None = None) -> BatchPage:
    """/preorders/<slug>/: the batch (404 for a draft), its product, tiers, images and
    options, the brand's fan club, and the signed-in user's reservations and waitlist place
    (`fan`, when already read: `fan_part`)."""
    batch = (
        _shown()
        .select_related("product__brand")
        .prefetch_related(_ordered_tiers(), _product_images(), _active_variants())
        .filter(slug=slug)
        .first()
    )
    if batch is None:
        raise Http404("No such pre-order batch")
    if fan is None and user.is_authenticated:
        fan = fan_part(batch_id=batch.pk, user=user)
    fan = fan or FanPart()
    return BatchPage(
        batch=batch,
        progress=batch_progress(batch=batch),
        variants=batch.product.active_variants,
        images=batch.product.ordered_images,
        community=brand_community(brand_id=batch.product.brand_id),
        my_reservations=list(fan.reservations),
        waitlist_entry=fan.waitlist_entry,
    )


def batch_page_ids(*, slug: str) -> tuple[int, int] | None:
    """(batch id, product id) of the shown batch with this slug, or None: one query."""
    return _shown().filter(slug=slug).values_list("pk", "product_id").first()


# The fan's reservations in the batch and their waitlist place, with their options' values,
# in one round trip: 'r' rows newest first, then at most one 'w' row.
_FAN_SQL = """
SELECT * FROM (
  SELECT 'r' AS kind, r.id, r.status, r.quantity, r.created_at, NULL::timestamptz AS expires,
         v.id AS variant_id, v.options
    FROM {reservation} r JOIN {variant} v ON v.id = r.variant_id
   WHERE r.batch_id = %(batch)s AND r.user_id = %(user)s
  UNION ALL
  SELECT 'w', w.id, w.status, w.quantity, w.created_at, w.offer_expires_at, v.id, v.options
    FROM {waitlist} w JOIN {variant} v ON v.id = w.variant_id
   WHERE w.batch_id = %(batch)s AND w.user_id = %(user)s AND w.status = ANY(%(waiting)s)
) AS mine
ORDER BY kind, created_at DESC, id DESC
"""


def fan_part(*, batch_id: int, user: User) -> FanPart:
    """The fan's own part of the batch page (one query)."""
    sql = _FAN_SQL.format(
        reservation=Reservation._meta.db_table,
        waitlist=WaitlistEntry._meta.db_table,
        variant=Variant._meta.db_table,
    )
    params = {
        "batch": batch_id,
        "user": user.pk,
        "waiting": [WaitlistStatus.WAITING.value, WaitlistStatus.OFFERED.value],
    }
    with prepared_cursor() as cursor:  # on every signed-in batch page: planned once
        cursor.execute(sql, params)
        rows = tuple(cursor.fetchall())
    return FanPart(rows=rows, batch_id=batch_id, user_id=user.pk)


def batch_for_reserve(*, slug: str) -> PreorderBatch:
    """The reserve POST: the batch (404 for a draft) with its product and active options,
    from this process's copy (preorders.batch_cache: no query; two when it was retired);
    the page's other parts are fetched only to show the form again."""
    batch = batch_static(
        slug=slug,
        read=lambda: (
            _shown()
            .select_related("product")
            .prefetch_related(_active_variants())
            .filter(slug=slug)
            .first()
        ),
    )
    if batch is None:
        raise Http404("No such pre-order batch")
    return batch


# --- the shopper's choices --------------------------------------------------------------------


@dataclass
class ShopperChoices:
    addresses: list[Address]
    cards: list[SavedCard]
    complete: bool = True  # False: only those a posted form named


def _posted_id(data: QueryDict, name: str) -> int | None:
    value = data.get(name, "")
    return int(value) if value.isdigit() and len(value) < 19 else None


@functools.cache
def _posted_sql(model) -> tuple[str, list[str]]:
    """One row of the shopper's own by its id (a card: a usable one of the provider's)."""
    fields = model._meta.concrete_fields
    columns = ", ".join(f'"{f.column}"' for f in fields)
    where = '"id" = %s AND "user_id" = %s'
    if model is SavedCard:
        where += ' AND "deleted_at" IS NULL AND "provider" = %s'
    sql = f'SELECT {columns} FROM "{model._meta.db_table}" WHERE {where}'  # noqa: S608
    return sql, [f.attname for f in fields]


def _posted(model, pk: int | None, *params) -> list:
    """The row a posted form names, written as SQL once: a hot drop's POST would spend more
    time building the ORM's query than the database spends answering it."""
    if pk is None:
        return []
    sql, names = _posted_sql(model)
    with prepared_cursor() as cursor:  # a point lookup on every reserve POST: planned once
        cursor.execute(sql, [pk, *params])
        return [model.from_db(connection.alias, names, row) for row in cursor.fetchall()]


def shopper_choices(*, user: User, posted: QueryDict | None = None) -> ShopperChoices:
    """The saved addresses and cards a reserve or pay form offers (two queries). With
    `posted`, only the card and the address that form names, enough to validate it (a hot
    drop's POST: one query with a new address typed in); shown again, it needs them all."""
    provider = provider_get().name
    if posted is None:
        cards = SavedCard.objects.filter(user=user, deleted_at=None, provider=provider)
        return ShopperChoices(addresses=list(addresses_for(user=user)), cards=list(cards))
    card_id, address_id = _posted_id(posted, "saved_card"), _posted_id(posted, "saved_address")
    return ShopperChoices(
        addresses=_posted(Address, address_id, user.pk),
        cards=_posted(SavedCard, card_id, user.pk, provider),
        complete=False,
    )


# --- reservations -----------------------------------------------------------------------------


def reservations_of(*, user: User) -> QuerySet[Reservation]:
    """/preorders/mine/: the user's reservations, newest first, with what each row shows."""
    return (
        Reservation.objects.filter(user=user)
        .select_related("batch__product", "variant", "order")
        .prefetch_related(Prefetch("batch__tiers", queryset=PriceTier.objects.all()))
        .order_by("-created_at", "-id")
    )


def reservations_priced(reservations: Iterable[Reservation]) -> list[Reservation]:
    """`price` and `total` on each: the unit price fixed at the close, else today's ladder
    price (`price_is_final` says which; the batches come with their tiers prefetched)."""
    reservations = list(reservations)
    for reservation in reservations:
        batch = reservation.batch
        final = reservation.unit_price or batch.final_unit_price
        reservation.price_is_final = final is not None
        reservation.price = final or ladder_price(
            tiers=list(batch.tiers.all()), units=batch.reserved_units
        )
        reservation.total = (
            reservation.price * reservation.quantity if reservation.price is not None else None
        )
    return reservations


def reservation_state(*, pk: int) -> Reservation:
    """A reservation as it is now, with its batch and option (after a payment moved it)."""
    return Reservation.objects.select_related("batch", "variant").get(pk=pk)


def reservation_for(*, user: User, pk: int) -> Reservation:
    """The user's own reservation with its batch, tiers, options, events and order; another
    user's is a 404 like an unknown one. `progress` and `deposit_held` are set on it."""
    reservation = (
        Reservation.objects.filter(user=user, pk=pk)
        .select_related("batch__product__brand", "variant", "order", "saved_card")
        .prefetch_related(
            Prefetch("batch__tiers", queryset=PriceTier.objects.order_by("min_quantity")),
            Prefetch(
                "batch__product__variants",
                queryset=Variant.objects.filter(is_active=True).order_by("position", "id"),
                to_attr="active_variants",
            ),
            Prefetch("events", queryset=PreorderEvent.objects.order_by("created_at", "id")),
        )
        .first()
    )
    if reservation is None:
        raise Http404("No such reservation")
    reservation.progress = batch_progress(batch=reservation.batch)
    reservation.deposit_held = reservation.deposit_paid - reservation.deposit_refunded
    reservation.deposit_refunds_pending = deposit_refunds_pending(reservation=reservation)
    return reservation


def deposit_refunds_pending(*, reservation: Reservation) -> list[Refund]:
    """Deposit refunds the provider refused or has not answered: still owed to the shopper,
    retried by payments' sweep. Each has `amount` and the provider's `failure_message`."""
    return list(
        Refund.objects.filter(
            payment__reference=reservation.deposit_reference,
            status__in=[RefundStatus.PENDING, RefundStatus.FAILED],
        ).order_by("created_at", "id")
    )


def reservation_card_uses(*, card: SavedCard) -> list[str]:
    """payments' card-use checker: the pre-orders this card will still be charged for (held,
    being charged, or a failed charge still within its grace period)."""
    now = timezone.now()
    uses = []
    for reservation in (
        Reservation.objects.filter(saved_card=card)
        .filter(
            Q(status__in=[ReservationStatus.HELD, ReservationStatus.CHARGING])
            | Q(status=ReservationStatus.PAYMENT_FAILED, grace_until__gt=now)
            | Q(status=ReservationStatus.PAYMENT_FAILED, grace_until__isnull=True)
        )
        .select_related("batch__product")
        .order_by("batch__closes_at", "id")
    ):
        batch = reservation.batch
        if reservation.status == ReservationStatus.PAYMENT_FAILED:
            when = (
                f"to pay by {timezone.localtime(reservation.grace_until):%-d %b %Y}"
                if reservation.grace_until
                else "payment due"
            )
        else:
            when = f"closes {timezone.localtime(batch.closes_at):%-d %b %Y}"
        uses.append(f"your pre-order of {batch.product.name} ({when})")
    return uses


def reservation_payment_awaiting_action(*, reservation: Reservation) -> Payment | None:
    """The reservation's payment that waits for the shopper's bank (the engine's rule)."""
    from payments.commitments.pages import commitment_payment_awaiting_action
    from preorders.book import preorder_book

    return commitment_payment_awaiting_action(book=preorder_book(), commitment=reservation)
