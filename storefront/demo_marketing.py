"""Vouchers and QR placements of the demo brands, with scans over the last days and an
order that a scan brought, so the operators' placement pages show a funnel."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from catalog.models import Brand, ProductStatus, Variant
from communities.models import Community
from marketing.models import Placement, Voucher, VoucherCode
from marketing.placements import placement_fan_add, scan_record
from marketing.vouchers import voucher_codes_generate
from orders.models import Cart
from orders.services import cart_add, order_pay, order_place
from payments.services import card_save
from storefront.demo_orders import DEMO_ADDRESS

CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}


def demo_seed_marketing(*, fans) -> int:
    """Per brand: a shared code (BRAND10), a batch of single-use codes, a claim-only
    welcome voucher, and two placements with scans; one fan buys through the first."""
    created = 0
    now = timezone.now()
    for index, brand in enumerate(Brand.objects.order_by("pk")):
        if Placement.objects.filter(brand=brand).exists():
            continue
        prefix = "".join(ch for ch in brand.slug.split("-")[0].upper() if ch.isalnum())[:8]
        shared = Voucher.objects.create(
            brand=brand,
            name=f"{brand.name} spring 10%",
            kind="percent",
            value=Decimal("10"),
            usage_limit=100,
            ends_at=now + timedelta(days=60),
        )
        VoucherCode.objects.create(voucher=shared, code=f"{prefix}10")
        gig = Voucher.objects.create(
            brand=brand,
            name=f"{brand.name} gig night: 5 off",
            kind="fixed",
            value=Decimal("5.00"),
            min_spend=Decimal("30.00"),
        )
        voucher_codes_generate(voucher=gig, count=20, prefix=f"{prefix}GIG")
        welcome = Voucher.objects.create(
            brand=brand,
            name=f"{brand.name} window welcome 15%",
            kind="percent",
            value=Decimal("15"),
            claim_only=True,
            new_customers_only=True,
        )
        product = brand.products.filter(status=ProductStatus.ACTIVE).order_by("pk").first()
        community = Community.objects.filter(brand=brand).order_by("pk").first()
        window = Placement.objects.create(
            brand=brand,
            name=f"{brand.name} shop window",
            kind="shop_window",
            target_kind="product" if product else "brand",
            target_id=product.pk if product else None,
            voucher=welcome,
        )
        poster = Placement.objects.create(
            brand=brand,
            name=f"{brand.name} concert poster",
            kind="poster",
            target_kind="community" if community else "brand",
            target_id=community.pk if community else None,
        )
        for days_ago, visitors in ((6, 4), (4, 7), (2, 3), (0, 5)):
            for n in range(visitors):
                for placement in (window, poster):
                    scan_record(
                        placement=placement,
                        visitor=f"demo-{brand.pk}-{days_ago}-{n}",
                        user=None,
                        now=now - timedelta(days=days_ago, hours=n),
                    )
        fan = fans[3 + index] if len(fans) > 3 + index else None
        variant = (
            Variant.objects.filter(product__brand=brand, stock__gte=2, is_active=True)
            .order_by("pk")
            .first()
        )
        if fan is not None and variant is not None:
            scan_record(placement=window, visitor=f"demo-fan-{fan.pk}", user=fan, now=now)
            placement_fan_add(placement=window, user=fan, scanned_at=now)  # claims its code
            cart, _ = Cart.objects.get_or_create(user=fan)
            cart_add(cart=cart, variant=variant, quantity=1)
            cart.refresh_from_db()
            order = order_place(
                user=fan,
                cart=cart,
                shipping_method="standard",
                address={**DEMO_ADDRESS, "full_name": fan.public_name},
            )
            order_pay(order=order, saved_card=card_save(user=fan, card=CARD), user=fan)
        created += 1
    return created
