"""QR placements: a scan is counted once per visitor a day, bots and link previews never;
a visitor's scan follows them into the account they sign in or up with (and binds the
placement's voucher to it); the funnel's figures match what happened; the operator's admin
downloads the code and sees the funnel, for their own brand only."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.utils import timezone

from communities.models import Community, Membership
from marketing.models import PlacementFan, Scan, VoucherClaim
from marketing.selectors import placement_funnel, placement_funnel_by_day
from orders.fulfilment import order_part_refund
from orders.models import Cart
from tests.factories import BrandFactory, ProductFactory, UserFactory, VariantFactory
from tests.marketing import placement_make, voucher_make
from tests.shop import order_paid

pytestmark = pytest.mark.django_db

PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148 Safari/604.1"
BOTS = [
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "WhatsApp/2.23.20.0",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "TelegramBot (like TwitterBot)",
    "curl/8.4.0",
    "",
]


@pytest.fixture
def world():
    brand = BrandFactory(name="Nimbus", slug="nimbus")
    phone = VariantFactory(
        product=ProductFactory(brand=brand, name="Nimbus X2", slug="x2"), price=Decimal("40.00")
    )
    community = Community.objects.create(
        name="Nimbus fans", slug="nimbus-fans", kind="brand", brand=brand
    )
    voucher = voucher_make(brand=brand, code="WINDOW", claim_only=True, value=Decimal("10"))
    placement = placement_make(
        brand=brand, voucher=voucher, target_kind="product", target_id=phone.product_id
    )
    return {
        "brand": brand,
        "phone": phone,
        "community": community,
        "voucher": voucher,
        "placement": placement,
    }


def _scan(client, placement, agent=PHONE, method="get"):
    return getattr(client, method)(f"/q/{placement.token}/", HTTP_USER_AGENT=agent)


def test_a_scan_redirects_to_the_target_and_counts_once_a_day(client, world):
    placement = world["placement"]
    response = _scan(client, placement)
    assert response.status_code == 302 and response["Location"] == "/products/x2/"
    assert response["Cache-Control"] == "no-store"
    for _ in range(3):
        _scan(client, placement)
    assert Scan.objects.count() == 1
    with time_machine.travel(timezone.now() + timedelta(days=1)):
        _scan(client, placement)
    assert Scan.objects.count() == 2
    assert Scan.objects.values("visitor_key").distinct().count() == 1


def test_bots_link_previews_and_head_requests_are_not_counted(client, world):
    placement = world["placement"]
    for agent in BOTS:
        response = _scan(client, placement, agent=agent)
        assert response.status_code == 302  # the preview still gets the target
    _scan(client, placement, method="head")
    client.get(f"/q/{placement.token}/", HTTP_USER_AGENT=PHONE, HTTP_SEC_PURPOSE="prefetch")
    assert Scan.objects.count() == 0
    assert "marketing_scans" not in client.session


def test_a_signed_in_fan_is_one_visitor_across_browsers(client, world):
    fan = UserFactory()
    client.force_login(fan)
    _scan(client, world["placement"])
    client.cookies.clear()
    client.force_login(fan)
    _scan(client, world["placement"])
    assert Scan.objects.filter(user=fan).count() == 1


def test_unknown_and_inactive_tokens_are_404(client, world):
    assert client.get("/q/nope/", HTTP_USER_AGENT=PHONE).status_code == 404
    world["placement"].is_active = False
    world["placement"].save()
    assert _scan(client, world["placement"]).status_code == 404


def test_a_scan_claimed_voucher_binds_to_the_account_at_sign_up(client, world):
    placement, phone = world["placement"], world["phone"]
    page = client.get(_scan(client, placement)["Location"]).content.decode()
    assert "Sign in or create an account to claim 10% off Nimbus" in page
    client.post("/cart/add/", {"variant": phone.pk, "quantity": 1})
    fan = UserFactory()  # signs up now, after the scan
    client.force_login(fan)
    cart_page = client.get("/cart/").content.decode()
    claim = VoucherClaim.objects.get(user=fan)
    assert claim.placement == placement and claim.code.user == fan
    assert Cart.objects.get(user=fan).discount_code == claim.code.code
    assert claim.code.code in cart_page and "4.00" in cart_page
    fan_row = PlacementFan.objects.get(placement=placement, user=fan)
    assert fan_row.signed_up
    assert Scan.objects.get().user == fan
    # The personal code is of no use to anyone else.
    other = UserFactory()
    client.force_login(other)
    client.post("/cart/code/", {"code": claim.code.code, "code_action": "apply"})
    assert Cart.objects.get(user=other).discount_code == ""


def test_an_existing_member_signing_in_after_a_scan_is_no_sign_up(client, world):
    member = UserFactory()
    UserFactory._meta.model.objects.filter(pk=member.pk).update(
        date_joined=timezone.now() - timedelta(days=30)
    )
    _scan(client, world["placement"])
    client.force_login(UserFactory._meta.model.objects.get(pk=member.pk))
    client.get("/")
    assert not PlacementFan.objects.get(user=member).signed_up


def test_the_funnel_matches_hand_computed_figures(client, world):
    placement, phone, community = world["placement"], world["phone"], world["community"]
    other_placement = placement_make(brand=world["brand"], name="Poster")
    # Three browsers scan: two sign up (one joins the community and buys twice with the
    # voucher once; one buys nothing); one visitor never signs in; one scans twice a day.
    fans = []
    for signs_up in (True, True, False):
        client.cookies.clear()
        client.logout()
        _scan(client, placement)
        _scan(client, placement)
        if signs_up:
            fans.append(UserFactory())  # signs up after the scan
            client.force_login(fans[-1])
            client.get("/")
    buyer, _idle = fans
    # After the scan the buyer joins the community and buys.
    Membership.objects.create(community=community, user=buyer)
    code = VoucherClaim.objects.get(user=buyer).code.code
    Cart.objects.filter(user=buyer).update(discount_code=code)
    first = order_paid(variant=phone, quantity=2, buyer=buyer)  # 80.00 - 8.00 + 9.90
    assert first.discount == Decimal("8.00") and first.total == Decimal("81.90")
    second = order_paid(variant=phone, quantity=1, buyer=buyer)  # 40.00 + 9.90
    order_part_refund(part=second.parts.get(), actor=None, amount=Decimal("9.90"), key="r")
    # Someone who never scanned buys too: not counted.
    order_paid(variant=phone, quantity=1, buyer=UserFactory())
    # Another brand's order by the buyer is not this brand's revenue.
    order_paid(variant=VariantFactory(price=Decimal("10.00")), buyer=buyer)

    funnel = placement_funnel(placement)
    assert (funnel.scans, funnel.unique_visitors) == (3, 3)
    assert (funnel.fans, funnel.sign_ups, funnel.community_joins) == (2, 2, 1)
    assert (funnel.vouchers_claimed, funnel.vouchers_used) == (2, 1)
    assert funnel.orders == 2
    assert funnel.revenue == Decimal("81.90") + Decimal("49.90") - Decimal("9.90")
    assert funnel.extra["reservations"][1] == 0 and funnel.extra["pledges"][1] == 0
    empty = placement_funnel(other_placement)
    assert (empty.scans, empty.fans, empty.orders, empty.revenue) == (0, 0, 0, 0)
    today = placement_funnel_by_day(placement)
    assert [(d.scans, d.unique_visitors, d.sign_ups, d.orders) for d in today] == [(3, 3, 2, 2)]


def _operator(brand):
    user = UserFactory(is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="marketing"))
    brand.operators.add(user)
    return user


def test_the_operator_downloads_the_qr_code_and_sees_the_funnel(client, world):
    placement = world["placement"]
    _scan(client, placement)
    theirs = placement_make(brand=BrandFactory(name="Forge"), name="Forge poster")
    client.force_login(_operator(world["brand"]))
    svg = client.get(f"/admin/marketing/placement/{placement.pk}/qr.svg")
    assert svg.status_code == 200 and svg["Content-Type"] == "image/svg+xml"
    assert b"<svg" in svg.content
    png = client.get(f"/admin/marketing/placement/{placement.pk}/qr.png")
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    page = client.get(f"/admin/marketing/placement/{placement.pk}/change/").content.decode()
    assert "Unique visitors" in page and f"/q/{placement.token}/" in page
    assert client.get(f"/admin/marketing/placement/{theirs.pk}/qr.svg").status_code == 404
    listing = client.get("/admin/marketing/placement/").content.decode()
    assert "Shop window" in listing and "Forge poster" not in listing


def test_the_operator_creates_a_placement_for_their_own_targets_only(client, world):
    operator = _operator(world["brand"])
    foreign = ProductFactory(name="Forge buds")
    client.force_login(operator)
    data = {
        "brand": world["brand"].pk,
        "name": "Concert",
        "kind": "event",
        "target": f"product:{foreign.pk}",
        "voucher": world["voucher"].pk,
        "is_active": "on",
    }
    response = client.post("/admin/marketing/placement/add/", data)
    assert response.status_code == 200  # refused: not a target of this brand
    data["target"] = f"community:{world['community'].pk}"
    response = client.post("/admin/marketing/placement/add/", data)
    assert response.status_code == 302
    created = world["brand"].placements.get(name="Concert")
    assert (created.target_kind, created.target_id) == ("community", world["community"].pk)
    assert _scan(client, created)["Location"] == "/c/nimbus-fans/"
