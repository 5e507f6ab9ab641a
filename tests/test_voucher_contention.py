"""The usage limit under contention, on Postgres with real transactions: 50 shoppers check
out at once with one code limited to 10 uses (Saleor #544, Oscar #2101)."""

import threading
from collections import Counter
from decimal import Decimal

import pytest
from django.db import connection

from marketing.models import Voucher, VoucherCode, VoucherUse
from orders.models import Order
from orders.services import CheckoutError, checkout_submit
from tests.factories import ProductFactory, UserFactory, VariantFactory
from tests.marketing import cart_with, voucher_make
from tests.shop import ADDRESS, CARD_OK

pytestmark = pytest.mark.django_db(transaction=True)

SHOPPERS = 50
LIMIT = 10


def test_fifty_checkouts_at_once_never_exceed_the_usage_limit():
    variant = VariantFactory(
        product=ProductFactory(name="Nimbus X2"), price=Decimal("40.00"), stock=1000
    )
    voucher = voucher_make(
        brand=variant.product.brand, code="FIRST10", usage_limit=LIMIT, once_per_customer=True
    )
    shoppers = [UserFactory() for _ in range(SHOPPERS)]
    carts = [cart_with(user=user, items=[(variant, 1)], code="FIRST10") for user in shoppers]
    outcomes: Counter = Counter()
    lock = threading.Lock()
    start = threading.Barrier(SHOPPERS)

    def checkout(user, cart):
        start.wait()
        try:
            checkout_submit(
                user=user,
                cart=cart,
                address=ADDRESS,
                shipping_method="standard",
                save_address=False,
                saved_card=None,
                card_input=CARD_OK,
                keep_card=False,
                expected_total=Decimal("45.90"),  # 40.00 - 4.00 + 9.90, as the page showed
            )
            result = "paid"
        except CheckoutError as exc:
            result = exc.messages[0].split(":", 1)[1].strip()[:30]
        finally:
            connection.close()
        with lock:
            outcomes[result] += 1

    threads = [
        threading.Thread(target=checkout, args=(user, cart))
        for user, cart in zip(shoppers, carts, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert outcomes["paid"] == LIMIT, outcomes
    assert sum(outcomes.values()) == SHOPPERS
    voucher = Voucher.objects.get(pk=voucher.pk)
    assert voucher.used == LIMIT
    assert VoucherCode.objects.get(code="FIRST10").used == LIMIT
    assert VoucherUse.objects.filter(released_at=None).count() == LIMIT
    orders = Order.objects.all()
    # The refused checkouts left no order behind (each rolled back as a whole).
    assert orders.count() == LIMIT
    assert {order.discount for order in orders} == {Decimal("4.00")}
    assert all(order.status == "paid" for order in orders)


def test_the_same_scan_eight_times_at_once_counts_once_and_claims_once():
    from marketing.models import PlacementFan, Scan, VoucherClaim
    from marketing.placements import scan_record
    from tests.marketing import placement_make

    variant = VariantFactory(price=Decimal("40.00"))
    brand = variant.product.brand
    voucher = voucher_make(brand=brand, code="CLAIMME", claim_only=True)
    placement = placement_make(brand=brand, voucher=voucher)
    fan = UserFactory()
    start = threading.Barrier(8)
    errors = []

    def scan():
        start.wait()
        try:
            scan_record(placement=placement, visitor="same-browser", user=fan)
        except Exception as exc:  # noqa: BLE001 - any error fails the test below
            errors.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=scan) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Scan.objects.count() == 1
    assert PlacementFan.objects.count() == 1
    assert VoucherClaim.objects.filter(user=fan).count() == 1
    assert VoucherCode.objects.filter(user=fan).count() == 1
