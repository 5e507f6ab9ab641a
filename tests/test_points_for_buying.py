"""Buying earns points in the brand's fan club: a paid order (one point per 10.00 of each
brand's part), a confirmed pre-order; once, however often the payment is reported; and a
refund takes its share back through the same ledger, once per refund."""

from decimal import Decimal

import pytest
from django.db import transaction
from django.db.models import Sum

from communities.honour import spend_points
from communities.models import Community, MemberBadge, Membership, PointsEntry
from communities.services import community_join
from orders.fulfilment import order_part_refund
from orders.models import Cart, OrderStatus
from orders.services import cart_add, order_pay, order_payment_changed, order_place
from payments.listeners import payment_listener_notify
from payments.models import Payment
from payments.services import card_save
from preorders.services import batch_close
from storefront.purchase_honour import order_paid_award_points, order_refund_take_back_points
from tests.factories import BrandFactory, ProductFactory, UserFactory, VariantFactory
from tests.preorders import batch_open, reserve
from tests.shop import ADDRESS, CARD_OK

pytestmark = pytest.mark.django_db


def _points(community, user) -> int:
    membership = Membership.objects.get(community=community, user=user)
    ledger = PointsEntry.objects.filter(community=community, user=user).aggregate(Sum("points"))
    assert membership.points == (ledger["points__sum"] or 0)  # the total follows the ledger
    return membership.points


@pytest.fixture
def shop(django_capture_on_commit_callbacks):
    """A Nimbus phone at 2,397.00 and Forge buds at 79.00, each brand with its fan club; the
    buyer is a member of both."""
    nimbus, forge = (
        BrandFactory(name="Nimbus", slug="nimbus"),
        BrandFactory(name="Forge", slug="forge"),
    )
    phone = VariantFactory(
        product=ProductFactory(brand=nimbus), sku="X2", price=Decimal("2397.00"), stock=10
    )
    buds = VariantFactory(
        product=ProductFactory(brand=forge), sku="BUDS", price=Decimal("79.00"), stock=10
    )
    clubs = {
        brand.slug: Community.objects.create(
            name=f"{brand.name} fans", slug=f"{brand.slug}-fans", kind="brand", brand=brand
        )
        for brand in (nimbus, forge)
    }
    buyer = UserFactory()
    for club in clubs.values():
        community_join(community=club, user=buyer)
    return {"phone": phone, "buds": buds, "clubs": clubs, "buyer": buyer}


def _buy(buyer, *lines, capture):
    cart, _ = Cart.objects.get_or_create(user=buyer)
    for variant, quantity in lines:
        cart_add(cart=cart, variant=variant, quantity=quantity)
    order = order_place(user=buyer, cart=cart, address=ADDRESS, shipping_method="standard")
    with capture(execute=True):
        order_pay(order=order, saved_card=card_save(user=buyer, card=CARD_OK), user=buyer)
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    return order


def test_the_rule_is_one_point_per_ten_spent(settings):
    assert spend_points(Decimal("2397.00")) == 239
    assert spend_points(Decimal("9.99")) == 0
    settings.HONOUR_SPEND_PER_POINT = "1.00"
    assert spend_points(Decimal("2397.00")) == 2397


def test_a_paid_order_earns_points_once_in_each_brands_club(
    shop, django_capture_on_commit_callbacks
):
    nimbus, forge, buyer = shop["clubs"]["nimbus"], shop["clubs"]["forge"], shop["buyer"]
    order = _buy(
        buyer, (shop["phone"], 1), (shop["buds"], 1), capture=django_capture_on_commit_callbacks
    )
    nimbus_part, forge_part = (
        order.parts.get(brand__slug="nimbus"),
        order.parts.get(brand__slug="forge"),
    )
    assert _points(nimbus, buyer) == int(nimbus_part.total // 10)  # 2,397.00 + shipping share
    assert _points(nimbus, buyer) >= 239
    assert _points(forge, buyer) == int(forge_part.total // 10)
    assert MemberBadge.objects.filter(user=buyer, code="customer").count() == 2

    # The provider reports the payment again (a replayed webhook), and the listener runs
    # again: still once.
    payment = Payment.objects.get(reference=order.payment_reference)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        payment_listener_notify(payment)
        order_payment_changed(payment=payment)
    order_paid_award_points(order_id=order.pk)
    assert _points(nimbus, buyer) == int(nimbus_part.total // 10)
    assert PointsEntry.objects.filter(user=buyer).count() == 2


def test_only_members_earn_and_buying_joins_nobody(shop, django_capture_on_commit_callbacks):
    stranger = UserFactory()
    _buy(stranger, (shop["phone"], 1), capture=django_capture_on_commit_callbacks)
    assert not PointsEntry.objects.filter(user=stranger).exists()
    assert not Membership.objects.filter(user=stranger).exists()


def test_a_full_refund_takes_all_the_points_back_once(shop, django_capture_on_commit_callbacks):
    nimbus, buyer = shop["clubs"]["nimbus"], shop["buyer"]
    order = _buy(buyer, (shop["phone"], 1), capture=django_capture_on_commit_callbacks)
    earned = _points(nimbus, buyer)
    assert earned >= 239
    part = order.parts.get()
    with django_capture_on_commit_callbacks(execute=True):
        refund = order_part_refund(part=part, actor=None, amount=part.total, reason="Returned")
    assert _points(nimbus, buyer) == 0
    order_refund_take_back_points(refund_id=refund.pk)  # told twice: taken once
    assert _points(nimbus, buyer) == 0
    assert PointsEntry.objects.filter(user=buyer, points__lt=0).count() == 1


def test_partial_refunds_take_back_their_share_and_add_up_to_all(
    shop, django_capture_on_commit_callbacks
):
    nimbus, buyer = shop["clubs"]["nimbus"], shop["buyer"]
    order = _buy(buyer, (shop["phone"], 2), capture=django_capture_on_commit_callbacks)
    part = order.parts.get()
    earned = _points(nimbus, buyer)
    assert earned == int(part.total // 10) and earned >= 479
    quarter = (part.total / 4).quantize(Decimal("0.01"))
    with django_capture_on_commit_callbacks(execute=True):
        first = order_part_refund(part=part, actor=None, amount=quarter, reason="Scratched")
    expected_left = earned - round(earned * quarter / part.total)
    assert _points(nimbus, buyer) == expected_left
    order_refund_take_back_points(refund_id=first.pk)
    assert _points(nimbus, buyer) == expected_left  # once per refund
    part.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        order_part_refund(part=part, actor=None, amount=part.total - quarter, reason="Returned")
    assert _points(nimbus, buyer) == 0  # the shares add up to the award exactly


def test_a_confirmed_pre_order_earns_points_once(django_capture_on_commit_callbacks):
    batch = batch_open(min_quantity=1)
    club = Community.objects.create(
        brand=batch.product.brand, kind="brand", name="Fans", slug=f"fans-{batch.pk}"
    )
    reservation = reserve(batch=batch)
    community_join(community=club, user=reservation.user)
    with django_capture_on_commit_callbacks(execute=True):
        batch_close(batch=batch, force=True)
    earned = _points(club, reservation.user)
    assert earned > 0
    assert PointsEntry.objects.filter(source=f"preorder-res:{reservation.pk}").count() == 1
    # The paid order the settlement made for the pre-order earns nothing more.
    assert not PointsEntry.objects.filter(source__startswith="order-part:").exists()
    from preorders.honour import batch_honour_award

    assert batch_honour_award(batch_id=batch.pk) == 0  # run again: nothing twice
    assert _points(club, reservation.user) == earned


def test_refunding_a_pre_orders_order_takes_its_points_back(django_capture_on_commit_callbacks):
    batch = batch_open(min_quantity=1)
    club = Community.objects.create(
        brand=batch.product.brand, kind="brand", name="Fans", slug=f"fans-{batch.pk}"
    )
    reservation = reserve(batch=batch)
    community_join(community=club, user=reservation.user)
    with django_capture_on_commit_callbacks(execute=True):
        batch_close(batch=batch, force=True)
    reservation.refresh_from_db()
    before = _points(club, reservation.user)
    part = reservation.order.parts.get()
    operator = UserFactory(is_staff=True)
    with django_capture_on_commit_callbacks(execute=True):
        order_part_refund(part=part, actor=operator, amount=part.total / 2)
    assert _points(club, reservation.user) == before - 10  # half of the 20 pre-order points
    with django_capture_on_commit_callbacks(execute=True):
        order_part_refund(part=part, actor=operator, amount=part.total - part.total / 2)
    assert _points(club, reservation.user) == before - 20


def test_a_pre_order_paid_after_a_declined_charge_earns_its_points(
    client, django_capture_on_commit_callbacks
):
    """Found by a hostile tester: only reservations charged at the close earned points."""
    from payments.services import card_save as save
    from preorders.services import reservation_pay_again
    from tests.preorders import CARD_DECLINED_ON_CHARGE

    batch = batch_open(min_quantity=1)
    club = Community.objects.create(
        brand=batch.product.brand, kind="brand", name="Fans", slug=f"fans-{batch.pk}"
    )
    reservation = reserve(batch=batch, card=CARD_DECLINED_ON_CHARGE)
    community_join(community=club, user=reservation.user)
    with django_capture_on_commit_callbacks(execute=True):
        batch_close(batch=batch, force=True)
    assert _points(club, reservation.user) == 0  # declined: nothing yet
    good = save(user=reservation.user, card=CARD_OK)
    with django_capture_on_commit_callbacks(execute=True):
        reservation_pay_again(
            reservation=reservation, user=reservation.user, saved_card=good, card_input=None
        )
    reservation.refresh_from_db()
    assert reservation.status == "charged"
    assert PointsEntry.objects.filter(source=f"preorder-res:{reservation.pk}").count() == 1
    assert _points(club, reservation.user) == 20
