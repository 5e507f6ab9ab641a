"""The operators' dashboard on the admin index: every figure from one selector at a fixed
number of queries, and each matches what is worked out by hand below on known data (days in
the store's time zone, refunds on their own day, cohorts by join week)."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import BrandRole, ProductViewDay
from communities.models import Community, Reaction
from communities.moderation import report_create
from communities.services import community_join, post_create
from console.selectors import DASHBOARD_QUERIES, dashboard_for
from orders.fulfilment import order_part_refund, order_part_ship
from preorders.services import batch_close
from tests.console import operator_of, paid_order
from tests.crowdfunding import campaign_live, pledge
from tests.factories import BrandFactory, ProductFactory, UserFactory, VariantFactory
from tests.preorders import batch_open, reserve

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 18, 16, 0, tzinfo=UTC)  # Wednesday 18 March, noon in New York


def at(*args) -> time_machine.travel:
    return time_machine.travel(datetime(*args, tzinfo=UTC), tick=False)


@pytest.fixture
def known(settings, django_capture_on_commit_callbacks):
    settings.STORE_TIME_ZONE = "America/New_York"
    settings.COMMUNITY_RATE_LIMITS = {"post": (100, 100), "comment": (100, 100)}
    mine, theirs = BrandFactory(name="Mine", slug="mine"), BrandFactory(name="Theirs")
    owner = operator_of(mine, role=BrandRole.OWNER)
    club = Community.objects.create(name="Mine fans", slug="mine-fans", kind="brand", brand=mine)
    ann, ben, cat, dan = (UserFactory(display_name=n) for n in ("Ann", "Ben", "Cat", "Dan"))
    with at(2026, 3, 3, 15):
        community_join(community=club, user=ann)  # week of 2 March
    with at(2026, 3, 4, 15):
        community_join(community=club, user=ben)
        post = post_create(community=club, author=ann, title="Hi", body="First")
    with at(2026, 3, 10, 15):
        post_create(community=club, author=ann, title="Again", body="Second")
    with at(2026, 3, 16, 15):
        community_join(community=club, user=dan)  # week of 16 March
    with at(2026, 3, 17, 15):
        Reaction.objects.create(post=post, user=dan)
        report_create(reporter=ben, reason="spam", post=post)
    with at(2026, 2, 10, 15):
        order_c, part_c = paid_order(mine, price=Decimal("200.00"), buyer=cat)  # cat's first
    # 02:00 UTC on the 17th is 22:00 on the 16th in New York: it counts on the 16th.
    with at(2026, 3, 17, 2):
        order_a, part_a = paid_order(mine, price=Decimal("150.00"), buyer=ann)
    with at(2026, 3, 17, 15):
        paid_order(mine, price=Decimal("100.00"), buyer=cat)
        paid_order(theirs, price=Decimal("500.00"), buyer=ann)  # another brand: never counted
    with at(2026, 3, 18, 14):
        order_part_refund(part=part_a, actor=owner, amount=Decimal("30.00"))
        order_part_ship(part=part_c, tracking_number="T1", actor=owner)
    # A pre-order: cat's 25.00 deposit is charged on the 9th, the batch is charged (and its
    # order made) on the 11th: 25.00 counts on the 9th and the other 65.00 on the 11th.
    with at(2026, 3, 9, 15):
        batch = batch_open(
            min_quantity=1,
            ladder=[(1, "90.00")],
            deposit="25.00",
            product=ProductFactory(brand=mine),
        )
        reserve(batch=batch, user=cat)
    with at(2026, 3, 11, 15), django_capture_on_commit_callbacks(execute=True):
        batch_close(batch=batch, force=True)  # its settlement tasks run on the commit
    low = VariantFactory(product=ProductFactory(brand=mine), sku="LOW-1", stock=3)
    # Product page views, as the beat folds them in: 40 in the window, 5 before it.
    ProductViewDay.objects.create(product=low.product, day=date(2026, 3, 10), views=40)
    ProductViewDay.objects.create(product=low.product, day=date(2026, 2, 1), views=5)
    theirs_low = VariantFactory(product=ProductFactory(brand=theirs), sku="LOW-THEIRS", stock=1)
    ProductViewDay.objects.create(product=theirs_low.product, day=date(2026, 3, 10), views=100)
    with at(2026, 3, 15, 12):
        live = campaign_live(brand=mine, goal="200.00", deadline_in=timedelta(days=10))
        pledge(campaign=live, amount="50.00")
        campaign_live(brand=theirs, goal="100.00")
    return {"mine": mine, "theirs": theirs, "owner": owner, "live": live}


def test_the_figures_match_the_hand_worked_values(known):
    with time_machine.travel(NOW, tick=False), CaptureQueriesContext(connection) as queries:
        d = dashboard_for(brand_ids=[known["mine"].pk])
    assert len(queries) == DASHBOARD_QUERIES == 21
    assert d.today == date(2026, 3, 18)
    by_day = {bar.label: bar.value for bar in d.revenue_by_day}
    assert len(by_day) == 14 and list(by_day)[0] == "05 Mar" and list(by_day)[-1] == "18 Mar"
    assert (by_day["16 Mar"], by_day["17 Mar"], by_day["18 Mar"]) == (
        Decimal("150.00"),
        Decimal("100.00"),
        Decimal("-30.00"),
    )
    assert (by_day["09 Mar"], by_day["11 Mar"]) == (Decimal("25.00"), Decimal("65.00"))
    assert sum(by_day.values()) == Decimal("310.00")
    by_week = {bar.label: bar.value for bar in d.revenue_by_week}
    assert list(by_week)[0] == "26 Jan" and len(by_week) == 8
    assert by_week["09 Feb"] == Decimal("200.00") and by_week["16 Mar"] == Decimal("220.00")
    assert by_week["09 Mar"] == Decimal("90.00")
    assert sum(by_week.values()) == d.revenue_total == Decimal("510.00")
    assert d.refunds_total == Decimal("30.00")
    # 540.00 charged: ann (a member) 150.00; first orders: ann's 150.00 and cat's 200.00.
    assert d.member_share == 27.8 and d.first_time_share == 64.8
    assert d.to_ship == 3  # ann's, cat's second and her pre-order; cat's first has shipped
    assert d.reports_waiting == 1
    assert [v.sku for v in d.low_stock] == ["LOW-1"]
    (campaign,) = d.live_campaigns  # ends 25 March: 6 days 20 hours from noon on the 18th
    assert (campaign, campaign.percent) == (known["live"], 25)
    assert campaign.time_left == timedelta(days=6, hours=20)
    # Funnel (30 days): 40 views, 3 paid orders (their carts were emptied), no open cart.
    assert [(bar.label, bar.value) for bar in d.funnel] == [
        ("product views", 40),
        ("carts", 3),
        ("checkouts", 3),
        ("paid orders", 3),
    ]
    growth = {bar.label: bar.value for bar in d.growth}
    assert growth["02 Mar"] == 2 and growth["16 Mar"] == 1 and sum(growth.values()) == 3
    cohorts = {row["week"]: row for row in d.cohorts}
    march2 = cohorts[date(2026, 3, 2)]
    # Ann posted in weeks 0 and 1 and bought in week 2; Ben did nothing.
    assert march2["size"] == 2
    assert [(c["count"], c["share"]) for c in march2["cells"]] == [(1, 50), (1, 50), (1, 50)]
    march16 = cohorts[date(2026, 3, 16)]
    assert (march16["size"], march16["cells"]) == (1, [{"count": 1, "share": 100}])
    assert cohorts[date(2026, 1, 26)]["size"] == 0


def test_the_other_brands_figures_are_its_own(known):
    with time_machine.travel(NOW, tick=False):
        theirs = dashboard_for(brand_ids=[known["theirs"].pk])
    assert theirs.revenue_total == Decimal("500.00")
    assert theirs.member_share == 0.0 and theirs.reports_waiting == 0
    assert [v.sku for v in theirs.low_stock] == ["LOW-THEIRS"]


def test_the_admin_index_shows_the_dashboard_of_the_operators_brands_only(client, known):
    client.force_login(known["owner"])
    with time_machine.travel(NOW, tick=False):
        page = client.get("/admin/").content.decode()
    assert 'id="console-dashboard"' in page
    assert "$510.00" in page and "$500.00" not in page
    assert "LOW-1" in page and "LOW-THEIRS" not in page
    assert "/static/console/console.css" in page and "<svg" in page
    assert "cdn" not in page.lower()
    # Asking for the other brand's figures shows the operator's own.
    with time_machine.travel(NOW, tick=False):
        page = client.get(f"/admin/?brand={known['theirs'].pk}").content.decode()
    assert "$510.00" in page and "LOW-THEIRS" not in page


def test_the_dashboard_query_count_does_not_grow_with_the_data(known):
    mine = known["mine"]
    with time_machine.travel(NOW, tick=False):
        for price in ("120.00", "130.00", "140.00"):
            paid_order(mine, price=Decimal(price))
        with CaptureQueriesContext(connection) as queries:
            d = dashboard_for(brand_ids=[mine.pk])
    assert len(queries) == DASHBOARD_QUERIES
    assert d.revenue_total == Decimal("900.00")
