"""A NUL byte (or another C0 control character) anywhere in a request's path, query string or
form fields is answered 400 before it can reach PostgreSQL, which cannot store one. Each case
below answered 500 before the guard (config.middleware.ControlCharacterGuard), and each checks
that nothing was changed."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from communities.models import Community, Idea, Membership, Role
from config.middleware import MESSAGE
from orders.models import OrderStatus
from preorders.models import BatchStatus
from tests.factories import BrandFactory, ProductFactory, UserFactory, VariantFactory
from tests.preorders import batch_open, reserve
from tests.shop import order_paid

pytestmark = pytest.mark.django_db

OPERATE = "/admin/orders/order/{pk}/operate/{operation}/"


@pytest.fixture
def world():
    brand = BrandFactory(slug="nimbus")
    product = ProductFactory(brand=brand, slug="x2")
    variant = VariantFactory(product=product, stock=10)
    owner = UserFactory()
    order = order_paid(variant=variant, buyer=owner)
    batch = batch_open(product=ProductFactory(brand=brand))
    reserve(batch=batch)
    community = Community.objects.create(name="Fans", slug="fans", kind="hobby")
    Membership.objects.create(community=community, user=owner, role=Role.OWNER)
    idea = Idea.objects.create(community=community, author=owner, title="X3", description="d")
    return {"order": order, "owner": owner, "batch": batch, "idea": idea}


def _refused(response) -> bool:
    return response.status_code == 400 and response.content.decode() == MESSAGE


def test_nul_in_the_path_of_each_page_that_used_to_fail(client, world):
    client.force_login(world["owner"])
    for url in (
        "/orders/%00/",
        "/orders/%00/pay/",
        "/orders/%00/authenticate/",
        "/categories/a%00b/",
        "/c/invite/%00/",
        f"/orders/{world['order'].number}%01/",
    ):
        assert _refused(client.get(url)), url
    # The page itself still works.
    assert client.get(f"/orders/{world['order'].number}/").status_code == 200


def test_nul_in_a_query_string_name_or_value(client):
    for url in ("/products/?q=a%00b", "/products/?page=%1f", "/products/?a%00=1"):
        assert _refused(client.get(url)), url
    assert client.get("/products/?q=a%09b").status_code == 200  # a tab is fine


def test_nul_in_an_ideas_response(client, world):
    idea = world["idea"]
    client.force_login(world["owner"])
    url = f"/c/fans/ideas/{idea.pk}/status/"
    assert _refused(client.post(url, {"status": "planned", "response": "Soon\x00"}))
    idea.refresh_from_db()
    assert idea.status == "open"
    # Newlines, carriage returns and tabs are ordinary text.
    response = client.post(url, {"status": "planned", "response": "Soon.\r\n\tIn 2027."})
    assert response.status_code == 302
    idea.refresh_from_db()
    assert idea.status == "planned"


def test_nul_in_the_admins_tracking_number_and_refund_reason(admin_client, world):
    order = world["order"]
    ship = OPERATE.format(pk=order.pk, operation="ship")
    refund = OPERATE.format(pk=order.pk, operation="refund")
    assert _refused(admin_client.post(ship, {"tracking_number": "1Z\x00"}))
    assert _refused(admin_client.post(refund, {"amount": "1.00", "reason": "x\x00", "token": "t"}))
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID and order.amount_refunded == 0
    admin_client.post(ship, {"tracking_number": "1Z999"})
    order.refresh_from_db()
    assert (order.status, order.tracking_number) == (OrderStatus.SHIPPED, "1Z999")


def test_nul_in_a_batch_cancel_reason(admin_client, world):
    batch = world["batch"]
    operate = f"/admin/preorders/preorderbatch/{batch.pk}/operate/cancel/"
    assert _refused(admin_client.post(operate, {"reason": "gone\x00"}))
    changelist = admin_client.post(
        "/admin/preorders/preorderbatch/",
        {"action": "cancel", "_selected_action": [batch.pk], "reason": "\x00", "confirm": "yes"},
    )
    assert _refused(changelist)
    batch.refresh_from_db()
    assert batch.status == BatchStatus.OPEN


def test_nul_in_a_multipart_field_name_or_value(client, world):
    client.force_login(world["owner"])
    url = "/c/fans/posts/new/"
    image = SimpleUploadedFile("a.png", b"not an image", content_type="image/png")
    for data in (
        {"title": "Hi\x00", "body": "x"},
        {"title": "Hi", "body": "x", "we\x00ird": "1"},
        {"title": "Hi", "body": "x\x00", "image": image},
    ):
        assert _refused(client.post(url, data)), data  # the test client posts multipart
    assert not world["idea"].community.posts.exists()


def test_the_stripe_webhook_reads_its_own_raw_body():
    """The guard must not parse (and so consume) the webhook's body: the view verifies the
    signature over the raw bytes, and answers for itself."""
    response = Client().post(
        "/payments/stripe/webhook/",
        data="a=\x00",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.content.decode() != MESSAGE
    assert response.status_code < 500
