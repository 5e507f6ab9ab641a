"""One view of each fan for a brand's team: the customers list (search, filters, lifetime
value, last activity) and the fan's page (orders, pre-orders, posts and reports, levels and
badges, team notes), scoped to the operator's brands, at a fixed number of queries."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEntry
from catalog.models import BrandRole
from communities.models import Community
from communities.moderation import report_create
from communities.services import community_join, post_create
from console.customers import CustomerFilters, customers_list
from console.models import CustomerNote
from orders.fulfilment import order_part_refund
from tests.console import operator_of, paid_order
from tests.factories import BrandFactory, ProductFactory, UserFactory
from tests.preorders import batch_open, reserve

pytestmark = pytest.mark.django_db


@pytest.fixture
def fans(settings):
    settings.COMMUNITY_RATE_LIMITS = {"post": (100, 100), "comment": (100, 100)}
    mine, theirs = BrandFactory(name="Mine", slug="mine"), BrandFactory(name="Theirs")
    owner = operator_of(mine, role=BrandRole.OWNER)
    club = Community.objects.create(name="Mine fans", slug="mine-fans", kind="brand", brand=mine)
    ann = UserFactory(display_name="Ann Member", email="ann@example.com")
    bob = UserFactory(display_name="Bob Buyer", email="bob@example.com")
    cy = UserFactory(display_name="Cy Preorder", email="cy@example.com")
    theirs_only = UserFactory(display_name="Dee Theirs", email="dee@example.com")
    community_join(community=club, user=ann)
    post = post_create(community=club, author=ann, title="Love it", body="Great phone")
    eve = UserFactory(display_name="Eve Reporter")
    community_join(community=club, user=eve)
    report_create(reporter=eve, reason="rude", post=post)
    _, part = paid_order(mine, price=Decimal("120.00"), buyer=bob)
    order_part_refund(part=part, actor=owner, amount=Decimal("20.00"))
    paid_order(mine, price=Decimal("150.00"), buyer=bob)
    paid_order(theirs, price=Decimal("999.00"), buyer=bob)  # the other brand's money
    reserve(batch=batch_open(product=ProductFactory(brand=mine)), user=cy, quantity=2)
    paid_order(theirs, price=Decimal("130.00"), buyer=theirs_only)
    return {
        "mine": mine,
        "theirs": theirs,
        "owner": owner,
        "ann": ann,
        "bob": bob,
        "cy": cy,
        "theirs_only": theirs_only,
        "their_owner": operator_of(theirs, role=BrandRole.OWNER),
    }


def _names(users) -> list[str]:
    return [user.display_name for user in users]


def test_the_list_holds_the_brands_fans_with_their_figures(fans):
    customers = {
        c.display_name: c
        for c in customers_list(brand_ids=[fans["mine"].pk], filters=CustomerFilters(order="value"))
    }
    assert set(customers) == {"Ann Member", "Bob Buyer", "Cy Preorder", "Eve Reporter"}
    bob = customers["Bob Buyer"]
    # 120.00 + 150.00 charged, 20.00 refunded; the other brand's 999.00 is not theirs.
    assert (bob.order_count, bob.lifetime_value, bob.is_member) == (2, Decimal("250.00"), False)
    ann, cy = customers["Ann Member"], customers["Cy Preorder"]
    assert (ann.is_member, ann.order_count, ann.lifetime_value) == (True, 0, Decimal("0"))
    assert (cy.reservation_count, cy.pledge_count) == (1, 0)
    assert all(c.last_activity for c in customers.values())
    ordered = customers_list(brand_ids=[fans["mine"].pk], filters=CustomerFilters(order="value"))
    assert _names(ordered)[0] == "Bob Buyer"


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (CustomerFilters(q="ann"), ["Ann Member"]),
        (CustomerFilters(q="bob@example"), ["Bob Buyer"]),
        (CustomerFilters(members=True), ["Ann Member", "Eve Reporter"]),
        (CustomerFilters(buyers=True), ["Bob Buyer"]),
        (CustomerFilters(preorders=True), ["Cy Preorder"]),
        (CustomerFilters(backers=True), []),
        (CustomerFilters(min_value=Decimal("250.00")), ["Bob Buyer"]),
        (CustomerFilters(min_value=Decimal("250.01")), []),
        (CustomerFilters(active_days=7, q="Dee"), []),  # another brand's fan: never here
    ],
)
def test_search_and_filters(fans, filters, expected):
    assert sorted(_names(customers_list(brand_ids=[fans["mine"].pk], filters=filters))) == expected


def test_the_list_page_is_scoped_and_its_query_count_fixed(client, fans):
    client.force_login(fans["owner"])
    client.get("/admin/customers/")  # warm: the header's cached figures
    with CaptureQueriesContext(connection) as first:
        page = client.get("/admin/customers/").content.decode()
    assert "Ann Member" in page and "Bob Buyer" in page and "$250.00" in page
    assert "Dee Theirs" not in page and "$999.00" not in page
    for _ in range(5):
        paid_order(fans["mine"], price=Decimal("110.00"))
    with CaptureQueriesContext(connection) as second:
        client.get("/admin/customers/")
    assert len(second) == len(first)
    assert client.get("/admin/customers/?min_value=abc").status_code == 200  # a form error
    client.force_login(fans["their_owner"])
    page = client.get("/admin/customers/").content.decode()
    assert "Dee Theirs" in page and "Ann Member" not in page and "Bob Buyer" in page
    assert "$250.00" not in page  # Bob's money with the other brand is not shown here


def test_the_fans_page_shows_everything_they_did_with_the_brand(client, fans):
    client.force_login(fans["owner"])
    client.get("/admin/customers/")  # warm: the header's cached figures
    with CaptureQueriesContext(connection) as queries:
        page = client.get(f"/admin/customers/{fans['ann'].pk}/").content.decode()
    assert "Love it" in page and "Mine fans" in page and "level 1" in page
    assert "First post" in page  # the badge
    assert "Reported by another member" in page
    assert "ann@example.com" not in page  # a member who never bought: no address shown
    fixed = len(queries)
    page = client.get(f"/admin/customers/{fans['bob'].pk}/").content.decode()
    assert "bob@example.com" in page and "$120.00" in page and "$150.00" in page
    assert "$999.00" not in page
    page = client.get(f"/admin/customers/{fans['cy'].pk}/").content.decode()
    assert "first batch" in page
    with CaptureQueriesContext(connection) as again:
        client.get(f"/admin/customers/{fans['bob'].pk}/")
    assert len(again) == fixed
    # Another brand's fan, or nobody: no page.
    assert client.get(f"/admin/customers/{fans['theirs_only'].pk}/").status_code == 404
    assert client.get("/admin/customers/999999/").status_code == 404


def test_team_notes_stay_with_the_brand(client, fans):
    client.force_login(fans["owner"])
    url = f"/admin/customers/{fans['bob'].pk}/"
    response = client.post(url, {"brand": fans["mine"].pk, "body": "Prefers email."})
    assert response.status_code == 302
    note = CustomerNote.objects.get()
    assert (note.brand, note.author, note.customer) == (fans["mine"], fans["owner"], fans["bob"])
    assert "Prefers email." in client.get(url).content.decode()
    # A note for another brand is refused by the form (not one of the operator's brands).
    client.post(url, {"brand": fans["theirs"].pk, "body": "Hijack"})
    assert CustomerNote.objects.count() == 1
    entry = AuditEntry.objects.get(action="customer.note")  # the refused one left none
    assert (entry.actor, entry.brand, entry.object_id) == (
        fans["owner"],
        fans["mine"],
        str(note.pk),
    )
    assert entry.after == {"customer": "bob@example.com", "body": "Prefers email."}
    assert "customer.note" in client.get("/admin/audit/auditentry/").content.decode()
    client.force_login(fans["their_owner"])
    assert "Prefers email." not in client.get(url).content.decode()
    assert "customer.note" not in client.get("/admin/audit/auditentry/").content.decode()


def test_fans_without_a_brand_and_visitors_get_no_console(client, fans):
    assert client.get("/admin/customers/").status_code == 302  # to the admin's sign-in
    staff_without_brand = UserFactory(is_staff=True)
    client.force_login(staff_without_brand)
    assert client.get("/admin/customers/").status_code == 403
