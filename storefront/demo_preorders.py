"""Demo pre-order batches, made through the real services: one open batch filling up (a
three-tier ladder, a cap, no deposit, closing in five days) and one already closed and
confirmed, whose reservations became paid orders. Each batch is found by its slug, so running
the seed again creates nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from accounts.models import User
from catalog.models import Product, ProductStatus
from payments.services import card_save
from preorders.honour import brand_community
from preorders.models import PreorderBatch, PriceTier
from preorders.services import batch_close, batch_publish, reservation_create
from storefront.demo_orders import DEMO_ADDRESS

DEMO_CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"}


@dataclass(frozen=True)
class DemoBatch:
    slug: str
    brand_slug: str
    product_slug: str  # the first choice; else the brand's first active product
    title: str
    description: str
    ladder: tuple[tuple[int, str], ...]
    min_quantity: int
    cap: int
    closes_in: timedelta
    ships_in: timedelta
    # (fan index, option index, units): fans may reserve twice, up to the per-customer limit
    reservations: tuple[tuple[int, int, int], ...]
    close_now: bool = False


DEMO_BATCHES = [
    DemoBatch(
        slug="nimbus-x2-pro-fan-edition",
        brand_slug="nimbus-mobile",
        product_slug="nimbus-x2-pro",
        title="Nimbus X2 Pro: Fan Edition batch",
        description=(
            "The X2 Pro as the community voted it: engraved back, Sunset option, two-year "
            "warranty. The more of us reserve, the lower the price for everyone. Nobody is "
            "charged unless 20 units are reserved by the closing time."
        ),
        ladder=((1, "799.00"), (10, "749.00"), (25, "699.00")),
        min_quantity=20,
        cap=60,
        closes_in=timedelta(days=5),
        ships_in=timedelta(days=75),
        reservations=(
            (0, 0, 2),
            (1, 1, 1),
            (2, 2, 3),
            (3, 3, 1),
            (4, 4, 2),
            (5, 5, 1),
            (0, 1, 1),  # fans who come back for another option
            (1, 2, 2),
        ),
    ),
    DemoBatch(
        slug="forge-studio-founders-batch",
        brand_slug="forge-audio",
        product_slug="forge-studio-headphones",
        title="Forge Studio Headphones: Founders batch",
        description=(
            "The first run of the Studio headphones with the walnut cups the listeners "
            "designed. Confirmed: production has started."
        ),
        ladder=((1, "199.00"), (5, "179.00"), (10, "159.00")),
        min_quantity=6,
        cap=40,
        closes_in=timedelta(days=3),
        ships_in=timedelta(days=45),
        reservations=((0, 0, 2), (1, 1, 1), (2, 0, 1), (3, 1, 2), (4, 0, 1), (5, 1, 1)),
        close_now=True,
    ),
]


def _product(demo: DemoBatch) -> Product | None:
    """An active product of the brand, in a brand with a fan club (its fans earn points when
    a batch is confirmed)."""
    products = Product.objects.filter(
        brand__slug=demo.brand_slug, status=ProductStatus.ACTIVE, variants__is_active=True
    ).distinct()
    product = products.filter(slug=demo.product_slug).first() or products.order_by("pk").first()
    if product is None or brand_community(brand_id=product.brand_id) is None:
        return None
    return product


def _seed_batch(demo: DemoBatch, *, fans: list[User], operator: User | None) -> bool:
    if PreorderBatch.objects.filter(slug=demo.slug).exists():
        return False
    product = _product(demo)
    if product is None or not fans:
        return False
    variants = list(product.variants.filter(is_active=True).order_by("position", "pk"))
    now = timezone.now()
    batch = PreorderBatch(
        product=product,
        title=demo.title,
        slug=demo.slug,
        description=demo.description,
        opens_at=now - timedelta(hours=1),
        closes_at=now + demo.closes_in,
        min_quantity=demo.min_quantity,
        cap=demo.cap,
        estimated_ship_date=(now + demo.ships_in).date(),
        deposit_per_unit=Decimal("0.00"),
    )
    batch.full_clean()
    batch.save()
    PriceTier.objects.bulk_create(
        [
            PriceTier(batch=batch, min_quantity=quantity, unit_price=Decimal(price))
            for quantity, price in demo.ladder
        ]
    )
    batch = batch_publish(batch=batch, actor=operator)  # the window has started: open
    for n, (fan_index, option_index, units) in enumerate(demo.reservations):
        fan = fans[fan_index % len(fans)]
        reservation_create(
            batch=batch,
            user=fan,
            variant=variants[option_index % len(variants)],
            quantity=units,
            saved_card=card_save(user=fan, card=DEMO_CARD),
            address={**DEMO_ADDRESS, "full_name": fan.public_name},
            request_key=f"demo-{demo.slug}-{n}",
        )
    if demo.close_now:
        # The admin's "close now". The settlement's chunk tasks are enqueued when the seed's
        # transaction commits: eager Celery (tests) settles at once; under `make run` the seed
        # runs before the worker starts, so the batch shows "settling" until the worker picks
        # the queued chunks up from Redis a few seconds later and confirms it (paid orders,
        # points for the fans). The beat's reconcile sweep restarts it if a message is lost.
        batch_close(batch=batch, actor=operator, force=True)
    return True


def demo_seed_preorders(*, fans: list[User], operators_by_brand: dict[str, User]) -> int:
    """Returns how many batches were created."""
    return sum(
        _seed_batch(demo, fans=fans, operator=operators_by_brand.get(demo.brand_slug))
        for demo in DEMO_BATCHES
    )
