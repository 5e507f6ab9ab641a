"""Each main page at phone and desktop width, in a real browser, with demo-like data.
`make screens` keeps the pictures in bench/screens/ for a person to look at; in `make test`
they go to a temporary folder, and the test checks each page rendered what it should."""

import os
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import expect

from communities.models import Community, Membership, Role
from communities.services import comment_create, post_create
from orders.models import Cart
from orders.services import cart_add, order_pay, order_place
from payments.services import card_save
from preorders.models import PreorderBatch
from reviews.services import review_save
from tests.factories import (
    BrandFactory,
    CategoryFactory,
    ProductFactory,
    UserFactory,
    VariantFactory,
)
from tests.preorders import batch_open, reserve

pytestmark = pytest.mark.django_db(transaction=True)

PAGES = [  # (name, path, text the page must show, signed in?)
    ("home", "/", "Where fans shape what gets made", False),
    ("shop", "/products/", "Nimbus X2", False),
    ("search-typo", "/products/?q=nimbs", "Nimbus X2", False),
    ("category", "/categories/phones/", "Nimbus X2", False),
    ("product", "/products/nimbus-x2/", "Exactly what we voted for", False),
    ("brand", "/brands/nimbus/", "Nimbus Mobile", False),
    ("signup", "/accounts/signup/", "Sign Up", False),
    ("login", "/accounts/login/", "Sign In", False),
    ("communities", "/c/", "Nimbus Fans", False),
    ("community", "/c/nimbus-fans/", "Which colour for the X3?", True),
    ("post", "/c/nimbus-fans/posts/{post}/", "Sunset or Lime", True),
    ("cart", "/cart/", "Nimbus X2", True),
    ("checkout", "/checkout/", "Place order and pay", True),
    ("orders", "/orders/", "Paid", True),
    ("wishlist", "/wishlist/", "wishlist", True),
    ("profile", "/accounts/profile/", "Lin", True),
    ("member", "/u/lin/", "Which colour for the X3?", True),
    ("preorders", "/preorders/", "Nimbus X3 first run", False),
    ("preorder", "/preorders/nimbus-x3-first-run/", "Price ladder", False),
    ("preorder-reserve", "/preorders/nimbus-x3-first-run/", "Reserve", True),
    ("my-preorders", "/preorders/mine/", "Nimbus X3 first run", True),
    ("reservation", "/preorders/reservations/{reservation}/", "Reserved", True),
    ("product-sold-out", "/products/nimbus-x2/?colour=White", "Tell me when it", True),
    ("product-links", "/products/nimbus-x3/", "Nimbus X3 first run", True),
    ("help", "/help/", "Pre-orders", True),
]


@pytest.fixture
def shop_data():
    brand = BrandFactory(name="Nimbus Mobile", slug="nimbus")
    phone = ProductFactory(
        name="Nimbus X2",
        slug="nimbus-x2",
        brand=brand,
        category=CategoryFactory(name="Phones", slug="phones"),
        description="**Designed with fans.**\n\n- 120 Hz\n- 5,000 mAh",
    )
    black = VariantFactory(
        product=phone,
        price=Decimal("599.00"),
        stock=5,
        options={"colour": "Black"},
        compare_at_price=Decimal("649.00"),
    )
    VariantFactory(product=phone, price=Decimal("599.00"), stock=0, options={"colour": "White"})
    fan = UserFactory(email="lin@fans.example", display_name="Lin")
    review_save(
        product=phone,
        user=UserFactory(display_name="Maya"),
        rating=5,
        title="Exactly what we voted for",
        body="Battery is superb.",
    )
    cart = Cart.objects.create(user=fan)
    cart_add(cart=cart, variant=black, quantity=1)
    order = order_place(
        user=fan,
        cart=cart,
        shipping_method="standard",
        address={
            "full_name": "Lin",
            "line1": "1 Fan Street",
            "line2": "",
            "city": "Springfield",
            "postal_code": "12345",
            "country": "US",
            "phone": "",
        },
    )
    card = card_save(
        user=fan,
        card={"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"},
    )
    order_pay(order=order, saved_card=card, user=fan)
    cart_add(cart=cart, variant=black, quantity=1)
    community = Community.objects.create(
        name="Nimbus Fans",
        slug="nimbus-fans",
        kind="brand",
        brand=brand,
        description="The official fan club.",
    )
    Membership.objects.create(community=community, user=fan, role=Role.OWNER)
    post = post_create(
        community=community,
        author=fan,
        title="Which colour for the X3?",
        body="Sunset or Lime? **Vote below.**",
    )
    comment_create(post=post, author=fan, body="Lime!")
    fan.demo_post_id = post.pk
    x3 = ProductFactory(name="Nimbus X3", slug="nimbus-x3", brand=brand)
    VariantFactory(product=x3, options={"colour": "Lime"})
    batch = batch_open(product=x3, min_quantity=50, cap=500)
    PreorderBatch.objects.filter(pk=batch.pk).update(
        title="Nimbus X3 first run", slug="nimbus-x3-first-run"
    )
    batch.refresh_from_db()
    for _ in range(3):
        reserve(batch=batch, quantity=4)
    fan.demo_reservation_id = reserve(batch=batch, user=fan, quantity=2, card_obj=card).pk
    return fan


def test_main_pages(live_server, page, shop_data, tmp_path, password):
    folder = Path(os.environ.get("SCREENS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    signed_in = False
    for name, path, text, member in PAGES:
        if member and not signed_in:
            page.goto(f"{live_server.url}/accounts/login/")
            page.fill("input[name=login]", shop_data.email)
            page.fill("input[name=password]", password)
            page.click("main form button[type=submit]")
            signed_in = True
        page.goto(
            live_server.url
            + path.format(post=shop_data.demo_post_id, reservation=shop_data.demo_reservation_id)
        )
        expect(page.locator("main")).to_contain_text(text)
        page.screenshot(path=folder / f"{name}-{page.viewport_name}.png", full_page=True)
    assert len(list(folder.glob(f"*-{page.viewport_name}.png"))) == len(PAGES)
