"""The security baseline: headers and CSP on every page, no inline scripts, user text inert
wherever it shows, CSRF on every state-changing view, and an access sweep over every URL
that takes an id, slug or number."""

import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from communities.models import (
    Community,
    Invite,
    Membership,
    MembershipStatus,
    Role,
    Visibility,
)
from communities.services import comment_create, post_create
from crowdfunding.models import UpdateAudience
from crowdfunding.services import comment_create as campaign_comment_create
from crowdfunding.services import update_publish
from notifications.models import Notification, NotificationKind
from notifications.services import notification_send
from orders.models import Cart, OrderPart
from orders.services import cart_add, order_pay, order_place
from payments.services import card_save
from preorders.models import PreorderBatch
from reviews.services import review_save
from tests.crowdfunding import campaign_live, pledge
from tests.factories import BrandFactory, ProductFactory, UserFactory, VariantFactory
from tests.preorders import batch_open, reserve

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert('pwned')</script>"
ADDRESS = {
    "full_name": "A Fan",
    "line1": "1 Road",
    "line2": "",
    "city": "Town",
    "postal_code": "1",
    "country": "US",
    "phone": "",
}


@pytest.fixture
def world():
    owner = UserFactory(display_name=f"Eve{SCRIPT}")
    product = ProductFactory(
        name="Nimbus X2",
        slug="x2",
        brand=BrandFactory(slug="nimbus"),
        description=f"Great phone {SCRIPT} [x](javascript:alert(1))",
    )
    variant = VariantFactory(product=product, price=Decimal("10.00"), stock=5)
    review = review_save(product=product, user=owner, rating=5, title=SCRIPT, body=SCRIPT)
    cart = Cart.objects.create(user=owner)
    cart_add(cart=cart, variant=variant, quantity=1)
    order = order_place(user=owner, cart=cart, address=ADDRESS, shipping_method="standard")
    card = card_save(
        user=owner,
        card={"number": "4242424242424242", "exp_month": 1, "exp_year": 2099, "cvc": "123"},
    )
    batch = batch_open(product=product)
    PreorderBatch.objects.filter(pk=batch.pk).update(description=f"Soon {SCRIPT}")
    reservation = reserve(batch=batch, user=owner, card_obj=card)
    return {
        "batch": batch,
        "reservation": reservation,
        "owner": owner,
        "product": product,
        "variant": variant,
        "review": review,
        "order": order,
        "card": card,
        "notification": notification_send_and_get(owner),
        **private_community(owner),
        **campaign_world(owner, product.brand),
    }


def campaign_world(owner, brand) -> dict:
    """A live campaign the owner backs, with a backers-only update and a comment."""
    campaign = campaign_live(brand=brand, goal="100.00")
    backing = pledge(campaign=campaign, user=owner, amount="25.00")
    secret = update_publish(
        campaign=campaign,
        author=owner,
        title="Backers only",
        body="For backers",
        audience=UpdateAudience.BACKERS,
    )
    remark = campaign_comment_create(campaign=campaign, author=owner, body="Love it")
    return {"campaign": campaign, "pledge": backing, "update": secret, "remark": remark}


def private_community(owner) -> dict:
    community = Community.objects.create(
        name="Secret", slug="secret", kind="hobby", visibility=Visibility.PRIVATE
    )
    membership = Membership.objects.create(community=community, user=owner, role=Role.OWNER)
    post = post_create(
        community=community, author=owner, title=f"Members {SCRIPT}", body=f"Hi {SCRIPT}"
    )
    comment = comment_create(post=post, author=owner, body=f"First {SCRIPT}")
    return {"community": community, "membership": membership, "post": post, "comment": comment}


def notification_send_and_get(owner) -> Notification:
    notification_send(recipient_id=owner.pk, kind=NotificationKind.ORDER, title="Yours")
    return Notification.objects.get(recipient=owner, title="Yours")


def _ids(world) -> dict:
    """The values that fill the sweep's URLs: the owner's own objects."""
    return {
        "order": world["order"].number,
        "card": world["card"].pk,
        "review": world["review"].pk,
        "product": "x2",
        "product_id": world["product"].pk,
        "category": world["product"].category.path,
        "notification": world["notification"].pk,
        "membership": world["membership"].pk,
        "owner": world["owner"].pk,
        "post": world["post"].pk,
        "comment": world["comment"].pk,
        "batch": world["batch"].slug,
        "reservation": world["reservation"].pk,
        "handle": world["owner"].handle,
        "campaign": world["campaign"].slug,
        "pledge": world["pledge"].pk,
        "update": world["update"].pk,
        "remark": world["remark"].pk,
    }


def _every_page(world) -> list[str]:
    """Every site page a GET can reach: each URL without arguments, found from the URL
    resolver so that new pages are covered without being listed, and each page of the
    sweep below filled with the owner's own objects."""
    plain = [
        reverse(name)
        for name, pattern in _patterns()
        if not name.startswith("admin:")
        and name not in NOT_OBJECT_URLS
        and not re.search(r"<[^>]+>", str(pattern.pattern))
    ]
    ids = _ids(world)
    objects = [url.format(**ids) for method, url, _ in SWEEP.values() if method == "GET"]
    return sorted(set(plain + objects))


def _assert_safe_page(url: str, response) -> None:
    csp = response["Content-Security-Policy"]
    script_src = re.search(r"script-src ([^;]*)", csp).group(1)
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src, url
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp, url
    assert response["X-Content-Type-Options"] == "nosniff", url
    assert response["X-Frame-Options"] == "DENY", url
    assert response["Referrer-Policy"] == "same-origin", url
    assert response["Cross-Origin-Opener-Policy"] == "same-origin", url
    if not response["Content-Type"].startswith("text/html"):
        return
    html = response.content.decode()
    inline = [
        tag
        for tag in re.findall(r"<script\b[^>]*>", html)
        if "src=" not in tag and "application/json" not in tag
    ]
    assert inline == [], f"{url} has inline scripts: {inline}"
    assert re.findall(r"<[^>]+\son[a-z]+\s*=", html) == [], f"{url} has event handlers"
    assert SCRIPT not in html, f"{url} shows user text as markup"


def test_headers_csp_and_inert_text_on_every_page(client, world):
    """Each page, as a visitor and as the owner of everything in `world` (whose names,
    reviews, posts, comments and descriptions all carry a script)."""
    member = Client()
    member.force_login(world["owner"])
    pages = _every_page(world)
    shown = {"visitor": 0, "member": 0}
    for who, browser in (("visitor", client), ("member", member)):
        for url in pages:
            response = browser.get(url)
            assert response.status_code < 500, (who, url)
            if response.status_code == 200:
                shown[who] += 1
                _assert_safe_page(url, response)
    assert shown["member"] >= 40 and shown["visitor"] >= 20, shown  # the sweep found pages


def test_user_text_is_inert_everywhere_it_shows(client, world):
    client.force_login(UserFactory())
    pages = ["/products/x2/", "/products/?q=nimbus"]
    for url in pages:
        html = client.get(url).content.decode()
        assert SCRIPT not in html, url
        assert "javascript:alert" not in html, url
    client.force_login(world["owner"])
    for url in ["/", "/accounts/profile/", world["order"].get_absolute_url()]:
        html = client.get(url).content.decode()
        assert SCRIPT not in html, url
    assert "&lt;script&gt;" in client.get("/products/x2/").content.decode()


def _patterns(resolver=None, prefix=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            namespace = f"{prefix}{entry.namespace}:" if entry.namespace else prefix
            yield from _patterns(entry, namespace)
        elif isinstance(entry, URLPattern) and entry.name:
            yield f"{prefix}{entry.name}", entry


# Every site URL that names an object: how to request another user's object, and what the
# intruder must get. The test below fails when a URL with arguments is missing here.
SWEEP = {
    "orders:detail": ("GET", "/orders/{order}/", {404}),
    "orders:pay": ("GET", "/orders/{order}/pay/", {404}),
    "orders:authenticate": ("GET", "/orders/{order}/authenticate/", {404}),
    "orders:saved_card_delete": ("POST", "/account/cards/{card}/delete/", {404}),
    "reviews:delete": ("POST", "/reviews/{review}/delete/", {404}),
    "reviews:report": ("POST", "/reviews/{review}/report/", {302}),  # allowed: reporting
    "reviews:submit": ("POST", "/products/{product}/review/", {302}),  # own review
    "reviews:wishlist_toggle": ("POST", "/wishlist/{product_id}/toggle/", {302}),  # own list
    "storefront:product": ("GET", "/products/{product}/", {200}),  # public
    "storefront:brand": ("GET", "/brands/nimbus/", {200}),  # public
    "storefront:brand_offers": ("GET", "/brands/nimbus/offers/", {200}),  # public
    "storefront:product_variant": ("GET", "/products/{product}/options/", {302}),  # public
    "storefront:product_links": ("GET", "/products/{product}/links/", {302}),  # public
    # Alerts are the requester's own (by user and variant); no variant named is a 404.
    "storefront:stock_alert": ("POST", "/products/{product}/stock-alert/", {404}),
    "storefront:stock_alert_cancel": ("POST", "/products/{product}/stock-alert/cancel/", {404}),
    "page": ("GET", "/help/", {200}),  # public
    "communities:post_edit": ("GET", "/c/secret/posts/{post}/edit/", {404}),
    "catalog:variant": ("GET", "/products/{product}/variant/", {302}),  # public
    "catalog:category": ("GET", "/categories/{category}/", {200}),  # public
    # A team invitation is found by its secret token only: a guessed one does not exist.
    "catalog:invitation": ("GET", "/team/invitations/not-a-token/", {404}),
    # A fan's page in the brand console: the admin's sign-in first.
    "console_customer": ("GET", "/admin/customers/{owner}/", {302}),
    "notifications:open": ("POST", "/notifications/{notification}/open/", {404}),
    # A placement's QR code and a voucher link: a guessed token or code finds nothing.
    "marketing:scan": ("GET", "/q/not-a-token/", {404}),
    "marketing:voucher_link": ("GET", "/v/NOT-A-CODE/", {302}),  # "isn't valid", in the cart
    # A private community: its page says it is private; its content is 404 to outsiders.
    "communities:detail": ("GET", "/c/secret/", {200}),
    "communities:leaderboard": ("GET", "/c/secret/leaderboard/", {404}),
    "communities:join": ("POST", "/c/secret/join/", {302}),  # a request to join: allowed
    "communities:leave": ("POST", "/c/secret/leave/", {302}),  # nothing to leave
    "communities:decide": ("POST", "/c/secret/requests/{membership}/", {302}),  # refused
    "communities:ban": ("POST", "/c/secret/ban/{owner}/", {302}),  # refused
    "communities:post_new": ("POST", "/c/secret/posts/new/", {302, 400}),  # refused
    "communities:post": ("GET", "/c/secret/posts/{post}/", {404}),
    "communities:post_image": ("GET", "/c/secret/posts/{post}/image/", {404}),
    "communities:vote": ("POST", "/c/secret/posts/{post}/vote/", {404}),
    "communities:report": ("POST", "/c/secret/posts/{post}/report/", {404}),
    "communities:moderation": ("GET", "/c/secret/moderation/", {404}),
    "communities:ideas": ("GET", "/c/secret/ideas/", {404}),
    "communities:idea_upvote": ("POST", "/c/secret/ideas/1/upvote/", {404}),
    "communities:idea_status": ("POST", "/c/secret/ideas/1/status/", {404}),
    "communities:invite_new": ("POST", "/c/secret/invites/", {302}),  # refused: not a moderator
    "communities:invite": ("GET", "/c/invite/not-a-token/", {404}),
    "communities:member": ("GET", "/u/{handle}/", {200}),  # public, without private content
    "communities:mention_suggestions": ("GET", "/c/secret/mentions/?q=a", {404}),
    "communities:post_like": ("POST", "/c/secret/posts/{post}/like/", {404}),
    "communities:post_delete": ("POST", "/c/secret/posts/{post}/delete/", {404}),
    "communities:post_pin": ("POST", "/c/secret/posts/{post}/pin/", {404}),
    "communities:comment_delete": (
        "POST",
        "/c/secret/posts/{post}/comments/{comment}/delete/",
        {404},
    ),
    "preorders:detail": ("GET", "/preorders/{batch}/", {200}),  # public
    "preorders:progress": ("GET", "/preorders/{batch}/progress/", {200}),  # public
    "preorders:reserve": ("POST", "/preorders/{batch}/reserve/", {400}),  # own reservation
    # the form with the signed-in fan's own cards and addresses
    "preorders:reserve_form": ("GET", "/preorders/{batch}/reserve/form/", {200}),
    "preorders:waitlist": ("POST", "/preorders/{batch}/waitlist/", {302}),  # own place
    "preorders:reservation": ("GET", "/preorders/reservations/{reservation}/", {404}),
    "preorders:reservation_change": (
        "POST",
        "/preorders/reservations/{reservation}/change/",
        {404},
    ),
    "preorders:reservation_cancel": (
        "POST",
        "/preorders/reservations/{reservation}/cancel/",
        {404},
    ),
    "preorders:reservation_pay": ("GET", "/preorders/reservations/{reservation}/pay/", {404}),
    "preorders:reservation_authenticate": (
        "GET",
        "/preorders/reservations/{reservation}/authenticate/",
        {404},
    ),
    "crowdfunding:detail": ("GET", "/campaigns/{campaign}/", {200}),  # public
    "crowdfunding:progress": ("GET", "/campaigns/{campaign}/progress/", {200}),  # public
    "crowdfunding:pledge_create": ("POST", "/campaigns/{campaign}/pledge/", {400}),  # own
    "crowdfunding:follow": ("POST", "/campaigns/{campaign}/follow/", {302}),  # own follow
    "crowdfunding:comment": ("POST", "/campaigns/{campaign}/comments/", {302}),  # empty: refused
    "crowdfunding:comment_report": (
        "POST",
        "/campaigns/{campaign}/comments/{remark}/report/",
        {302},
    ),  # allowed: reporting
    # A backers-only update is no page for anyone else.
    "crowdfunding:update": ("GET", "/campaigns/{campaign}/updates/{update}/", {404}),
    "crowdfunding:pledge": ("GET", "/campaigns/pledges/{pledge}/", {404}),
    "crowdfunding:pledge_change": ("POST", "/campaigns/pledges/{pledge}/change/", {404}),
    "crowdfunding:pledge_cancel": ("POST", "/campaigns/pledges/{pledge}/cancel/", {404}),
    "crowdfunding:pledge_pay": ("POST", "/campaigns/pledges/{pledge}/pay/", {404}),
    "crowdfunding:pledge_authenticate": (
        "GET",
        "/campaigns/pledges/{pledge}/authenticate/",
        {404},
    ),
}
NOT_OBJECT_URLS = {
    "account_confirm_email",
    "account_reset_password_from_key",
    "orders_order_operate",
}


def test_the_sweep_covers_every_url_with_arguments():
    missing = []
    for name, pattern in _patterns():
        if name.startswith("admin:") or name in NOT_OBJECT_URLS:
            continue
        if re.search(r"<[^>]+>", str(pattern.pattern)) and name not in SWEEP:
            missing.append(name)
    assert missing == [], f"add these URLs to SWEEP: {missing}"


def test_another_users_objects_are_out_of_reach(client, world):
    intruder = UserFactory()
    client.force_login(intruder)
    ids = _ids(world)
    for name, (method, url, expected) in SWEEP.items():
        response = getattr(client, method.lower())(url.format(**ids))
        assert response.status_code in expected, (name, response.status_code)
    world["review"].refresh_from_db()
    assert world["review"].title == SCRIPT  # untouched
    world["card"].refresh_from_db()
    assert world["card"].deleted_at is None
    world["post"].refresh_from_db()
    assert world["post"].is_visible and not world["post"].is_pinned
    assert Membership.objects.get(user=world["owner"]).status == MembershipStatus.ACTIVE
    assert not Invite.objects.exists()  # the outsider could not make an invite link
    world["reservation"].refresh_from_db()
    assert world["reservation"].status == "held" and world["reservation"].quantity == 1
    world["pledge"].refresh_from_db()
    assert world["pledge"].status == "held" and world["pledge"].amount == Decimal("25.00")


def test_csrf_is_enforced_on_every_state_changing_view(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world["owner"])
    ids = _ids(world)
    posts = [url.format(**ids) for method, url, _ in SWEEP.values() if method == "POST"]
    posts += [
        "/cart/add/",
        "/cart/update/",
        "/checkout/",
        "/accounts/profile/",
        "/accounts/logout/",
        "/orders/{order}/pay/".format(**ids),
        "/notifications/read-all/",
        "/notifications/preferences/",
    ]
    for url in posts:
        assert client.post(url, {}).status_code == 403, url
    assert (
        client.post(
            "/payments/stripe/webhook/",
            b"{}",
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE="t=1,v1=bad",
        ).status_code
        == 400
    )  # signed instead


def test_admin_pages_run_under_the_same_policy(admin_client, world):
    for url in [
        "/admin/",
        "/admin/catalog/product/",
        f"/admin/catalog/product/{world['product'].pk}/change/",
        f"/admin/orders/order/{world['order'].pk}/change/",
    ]:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert "script-src 'self'" in response["Content-Security-Policy"]
        html = response.content.decode()
        assert [
            t
            for t in re.findall(r"<script\b[^>]*>", html)
            if "src=" not in t and "application/json" not in t
        ] == [], url


def test_an_operator_reaches_only_their_own_brands_part_of_a_shared_order(client, world):
    """The admin's part operations are object URLs too: on an order holding Nimbus's and
    Forge's lines, Forge's operator (with every permission) gets 404 for Nimbus's part."""
    from django.contrib.auth.models import Permission

    forge = BrandFactory(name="Forge", slug="forge")
    buds = VariantFactory(product=ProductFactory(name="Forge Buds", brand=forge), stock=5)
    buyer = UserFactory()
    cart = Cart.objects.create(user=buyer)
    cart_add(cart=cart, variant=world["variant"], quantity=1)
    cart_add(cart=cart, variant=buds, quantity=1)
    order = order_place(user=buyer, cart=cart, address=ADDRESS, shipping_method="standard")
    card = card_save(
        user=buyer,
        card={"number": "4242424242424242", "exp_month": 1, "exp_year": 2099, "cvc": "123"},
    )
    order_pay(order=order, saved_card=card, user=buyer)
    operator = UserFactory(is_staff=True)
    operator.user_permissions.add(*Permission.objects.all())
    forge.operators.add(operator)
    nimbus_part = OrderPart.objects.get(order=order, brand=world["product"].brand)
    client.force_login(operator)
    for operation in ["ship", "deliver", "refund", "cancel"]:
        url = reverse("admin:orders_order_operate", args=[order.pk, operation])
        assert client.get(f"{url}?part={nimbus_part.pk}").status_code == 404, operation
        response = client.post(
            url, {"part": nimbus_part.pk, "tracking_number": "X", "amount": "1.00"}
        )
        assert response.status_code == 404, operation
    assert client.get(f"/orders/{order.number}/").status_code == 404  # not the buyer
    nimbus_part.refresh_from_db()
    assert (nimbus_part.status, nimbus_part.amount_refunded) == ("paid", 0)


def test_the_csp_header_built_once_is_django_csps_own_and_follows_the_settings(client, db):
    from csp.middleware import PolicyParts
    from csp.utils import build_policy
    from django.test import override_settings

    assert client.get("/").headers["Content-Security-Policy"] == build_policy(**vars(PolicyParts()))
    stricter = {"DIRECTIVES": {"default-src": ["'none'"], "img-src": ["'self'"]}}
    with override_settings(CONTENT_SECURITY_POLICY=stricter):
        policy = client.get("/").headers["Content-Security-Policy"]
    assert sorted(policy.split("; ")) == ["default-src 'none'", "img-src 'self'"]
    assert "frame-ancestors 'none'" in client.get("/").headers["Content-Security-Policy"]
