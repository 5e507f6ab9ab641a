"""A new fan's whole journey in a real browser, at phone and desktop width, with a real Celery
worker delivering the mail: sign up, open the verification mail, verify, sign out and in
again, find and join the brand's community, post, like, vote in a poll, follow the brand's
open pre-order from the community page and reserve, then find a phone by a misspelt search,
pick variants (htmx), pay with 4242 and see the paid order, its email, and the reservation."""

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from catalog.models import Variant
from communities.models import Community, Membership, PollVote, Post, Reaction, Role
from communities.polls import poll_create
from communities.services import post_create
from orders.models import Order, OrderStatus
from preorders.models import PreorderBatch, Reservation, ReservationStatus
from tests.e2e.steps import (
    CARD_DECLINED_ON_CHARGE,
    CARD_OK,
    PASSWORD,
    check_out,
    confirm_email,
    reserve,
    sign_in,
    sign_out,
    sign_up,
)
from tests.factories import BrandFactory, ProductFactory, UserFactory, VariantFactory
from tests.preorders import batch_open

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def brand_world():
    """Nimbus: a phone in two colours, a fan club with the team's poll, and an open
    pre-order batch for the next phone."""
    brand = BrandFactory(name="Nimbus Mobile", slug="nimbus")
    phone = ProductFactory(name="Nimbus X2", slug="nimbus-x2", brand=brand)
    VariantFactory(
        product=phone, sku="X2-BLK", price=Decimal("599.00"), stock=5, options={"colour": "Black"}
    )
    VariantFactory(
        product=phone, sku="X2-WHT", price=Decimal("649.00"), stock=2, options={"colour": "White"}
    )
    community = Community.objects.create(
        name="Nimbus Fans", slug="nimbus-fans", kind="brand", brand=brand
    )
    team = UserFactory(display_name="Nimbus Team")
    Membership.objects.create(community=community, user=team, role=Role.OWNER)
    poll_post = post_create(
        community=community, author=team, title="Which colour for the X3?", body="Vote below."
    )
    poll_create(post=poll_post, question="Which colour?", options=["Sunset", "Lime"])
    next_phone = ProductFactory(name="Nimbus X3", slug="nimbus-x3", brand=brand)
    VariantFactory(product=next_phone, sku="X3-LIME", options={"colour": "Lime"})
    batch = batch_open(product=next_phone, min_quantity=5, cap=100)
    PreorderBatch.objects.filter(pk=batch.pk).update(title="Nimbus X3 first run")
    return {"poll_post": poll_post, "batch": batch}


def test_a_new_fan_joins_talks_reserves_and_buys(live_server, page, mailbox, brand_world):
    base = live_server.url
    email = f"new.fan.{page.viewport_name}@example.com"

    # Sign up; the worker delivers the verification mail; verify; sign out and in again.
    sign_up(page, base, email)
    confirm_email(page, base, mailbox.text(mailbox.wait_for(to=email, subject="Confirm")))
    sign_out(page)
    sign_in(page, base, email, PASSWORD)

    # Find the brand's community and join it; post; like the team's post; vote.
    page.goto(f"{base}/c/?q=nimbus")
    page.get_by_role("link", name="Nimbus Fans").first.click()
    page.get_by_role("button", name="Join").click()
    expect(page.locator("body")).to_contain_text("Welcome to Nimbus Fans!")
    page.fill("input[name=title]", "Hello from a new fan")
    page.fill("textarea[name=body]", "Sunset, **obviously**.")
    page.get_by_role("button", name="Publish").click()
    expect(page.locator("main")).to_contain_text("Hello from a new fan")
    expect(page.locator("main strong", has_text="obviously")).to_be_visible()

    page.goto(f"{base}/c/nimbus-fans/posts/{brand_world['poll_post'].pk}/")
    like = page.locator("form[action$='/like/'] button").first
    expect(like).to_contain_text("0")
    like.click()  # htmx swaps the button in place
    expect(page.locator("form[action$='/like/'] button").first).to_contain_text("1")
    page.get_by_label("Sunset").check()
    page.get_by_role("button", name="Vote").click()
    expect(page.locator("main")).to_contain_text("100%")

    # The community page shows the brand's open pre-order (an htmx fragment); reserve 2.
    page.goto(f"{base}/c/nimbus-fans/")
    expect(page.locator("main")).to_contain_text("First post")  # a badge, a sense of honour
    offers = page.locator("main").get_by_role("link", name="Nimbus X3 first run")
    offers.click()
    progress = page.locator("#batch-progress")
    expect(progress).to_contain_text("0 units reserved")
    expect(progress).to_contain_text("5 more units needed")
    expect(progress).to_contain_text("$179.00")  # the ladder's next tier
    reserve(page, units="2", card=CARD_OK)
    expect(page.locator("body")).to_contain_text("Reserved")
    page.goto(f"{base}/preorders/{brand_world['batch'].slug}/")
    expect(page.locator("#batch-progress")).to_contain_text("2 units reserved")
    expect(page.locator("#batch-progress")).to_contain_text("3 more units needed")

    # Buy: a misspelt search finds the phone; two colours (htmx); pay with 4242.
    page.goto(f"{base}/products/?q=nimbs")
    page.get_by_role("link", name="Nimbus X2").first.click()
    # The colour chips swap the panel through htmx, a deferred script: a click before the
    # page's load event reaches a plain radio (CI once clicked in that window).
    page.wait_for_url(re.compile(r"/products/nimbus-x2/"), wait_until="load")
    expect(page.locator("#variant-panel")).to_contain_text("599.00")
    page.locator("label", has_text="White").click()  # htmx swaps the panel, no reload
    expect(page.locator("#variant-panel")).to_contain_text("649.00")
    expect(page.locator("#variant-panel")).to_contain_text("only 2 left")
    page.locator("#variant-panel").get_by_role("button", name="Add to cart").click()
    expect(page.locator("body")).to_contain_text("added to your cart")
    page.goto(f"{base}/products/nimbus-x2/?colour=Black")
    page.locator("#variant-panel").get_by_role("button", name="Add to cart").click()
    page.wait_for_url(f"{base}/cart/")
    expect(page.locator("main")).to_contain_text("$1,248.00")  # cart subtotal
    page.get_by_role("link", name="Checkout").first.click()
    check_out(page, card=CARD_OK)
    expect(page.locator("body")).to_contain_text("is paid")

    order = Order.objects.get(user__email=email)
    assert order.status == OrderStatus.PAID and order.total == Decimal("1248.00")
    expect(page.locator("main")).to_contain_text(order.number)
    expect(page.locator("main")).to_contain_text("$1,248.00")
    receipt = mailbox.wait_for(to=email, subject=order.number)  # sent by the worker
    assert "$1,248.00" in mailbox.text(receipt)

    # The fan's own lists: the paid order, and the held reservation.
    page.goto(f"{base}/orders/")
    expect(page.locator("main")).to_contain_text(order.number)
    expect(page.locator("main")).to_contain_text("Paid")
    page.goto(f"{base}/preorders/mine/")
    expect(page.locator("main")).to_contain_text("Nimbus X3 first run")

    # And what the database holds.
    assert Variant.objects.get(sku="X2-WHT").stock == 1
    assert Variant.objects.get(sku="X2-BLK").stock == 4
    reservation = Reservation.objects.get(user__email=email)
    assert (reservation.status, reservation.quantity) == (ReservationStatus.HELD, 2)
    assert Post.objects.filter(author__email=email, title="Hello from a new fan").exists()
    assert Reaction.objects.filter(user__email=email, post=brand_world["poll_post"]).exists()
    assert PollVote.objects.get(user__email=email).option.text == "Sunset"


def test_a_declined_card_shows_a_clear_message(live_server, page, password, brand_world):
    base = live_server.url
    fan = UserFactory()
    sign_in(page, base, fan.email, password)
    page.goto(f"{base}/products/nimbus-x2/")
    page.locator("#variant-panel").get_by_role("button", name="Buy now").click()
    check_out(page, card=CARD_DECLINED_ON_CHARGE)
    expect(page.locator("body")).to_contain_text("Your card was declined.")
    assert Order.objects.get().status == OrderStatus.PENDING_PAYMENT
    assert Variant.objects.get(sku="X2-BLK").stock == 5
    expect(page.locator("main")).not_to_contain_text(re.compile(r"\bis paid\b"))
