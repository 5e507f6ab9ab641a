import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth.models import Group
from django.core.management import call_command

from accounts.models import User
from audit.models import AuditEntry
from catalog.models import Brand, Category, Product, ProductImage, ProductStatus, Variant
from console.selectors import dashboard_for
from crowdfunding.models import Campaign, CampaignStatus, Pledge, RewardTicket
from preorders.models import BatchStatus, PreorderBatch, PriceTier, Reservation, ReservationStatus
from reviews.models import Review
from storefront.demo import DEMO_PASSWORD, OPERATORS_GROUP
from storefront.demo_history import HISTORY_FANS

pytestmark = pytest.mark.django_db


def _snapshot():
    return {
        "users": sorted(
            User.objects.values_list(
                "id", "email", "display_name", "is_staff", "is_superuser", "password"
            )
        ),
        "emails": sorted(EmailAddress.objects.values_list("id", "email", "verified", "primary")),
        "brands": sorted(Brand.objects.values_list("id", "slug", "name", "logo")),
        "operators": sorted(
            Brand.operators.through.objects.values_list("brand_id", "user_id", "role")
        ),
        "audit": AuditEntry.objects.count(),
        "groups": sorted(Group.objects.values_list("id", "name", "permissions__codename")),
        "categories": sorted(Category.objects.values_list("id", "path", "full_name")),
        "products": sorted(
            Product.objects.values_list("id", "slug", "status", "price_min", "rating_count")
        ),
        "variants": sorted(Variant.objects.values_list("id", "sku", "price", "stock")),
        "images": sorted(ProductImage.objects.values_list("id", "product_id", "image")),
        "reviews": sorted(Review.objects.values_list("id", "product_id", "user_id", "rating")),
        "batches": sorted(
            PreorderBatch.objects.values_list("id", "slug", "status", "reserved_units")
        ),
        "tiers": sorted(PriceTier.objects.values_list("id", "batch_id", "min_quantity")),
        "reservations": sorted(
            Reservation.objects.values_list("id", "batch_id", "user_id", "quantity", "status")
        ),
        "campaigns": sorted(
            Campaign.objects.values_list("id", "slug", "status", "pledged_total", "backer_count")
        ),
        "pledges": sorted(Pledge.objects.values_list("id", "campaign_id", "user_id", "status")),
        "tickets": sorted(RewardTicket.objects.values_list("id", "code")),
    }


def test_seed_demo_twice_leaves_the_same_data(settings):
    settings.DEBUG = True
    settings.COMMUNITY_RATE_LIMITS = {"post": (5, 2), "comment": (30, 10)}  # the real ones
    call_command("seed_demo", verbosity=0)
    first = _snapshot()
    call_command("seed_demo", verbosity=0)
    assert _snapshot() == first

    assert len(first["brands"]) == 2
    assert all(logo for *_, logo in first["brands"])  # drawn with Pillow
    for brand in Brand.objects.all():
        assert sorted(brand.team.values_list("role", flat=True)) == ["owner", "staff"]
        for operator in brand.operators.all():
            assert operator.is_staff and not operator.is_superuser
            assert operator.groups.filter(name=OPERATORS_GROUP).exists()
            assert operator.check_password(DEMO_PASSWORD)
        owner = brand.team.get(role="owner").user
        assert owner.groups.filter(name="Brand owners").exists()
        assert brand.invitations.get().status == "open"
        # The team's changes are in the audit log: the staff member added, the invitation.
        assert set(AuditEntry.objects.filter(brand=brand).values_list("action", flat=True)) >= {
            "team.add",
            "team.invite",
        }
    assert User.objects.filter(is_superuser=True).count() == 1
    assert User.objects.filter(is_staff=False).count() == 6 + HISTORY_FANS
    assert EmailAddress.objects.filter(verified=True).count() == User.objects.count()
    assert 25 <= Product.objects.filter(status=ProductStatus.ACTIVE).count() <= 35
    assert Product.objects.exclude(status=ProductStatus.ACTIVE).exists()  # drafts to show off
    assert all(product.images.exists() for product in Product.objects.all())
    assert Variant.objects.count() > Product.objects.count()
    assert Review.objects.exists()
    for product in Product.objects.filter(rating_count__gt=0):
        assert product.rating_count == product.reviews.filter(is_hidden=False).count()


def test_seed_demo_gives_each_brand_a_dashboard_with_history(settings):
    """Eight weeks of joins, posts, likes and orders: the operator's charts have bars on
    most days, the cohort table a row per week, the funnel views, the queue reports."""
    settings.DEBUG = True
    settings.COMMUNITY_RATE_LIMITS = {"post": (5, 2), "comment": (30, 10)}  # the real ones
    call_command("seed_demo", verbosity=0)
    for brand in Brand.objects.all():
        dashboard = dashboard_for(brand_ids=[brand.pk])
        assert sum(bar.value > 0 for bar in dashboard.revenue_by_day) >= 7
        assert sum(bar.value > 0 for bar in dashboard.revenue_by_week) >= 6
        assert dashboard.refunds_total > 0
        # Three history fans a week; this week also the demo's own fans and the owner.
        assert [row["size"] for row in dashboard.cohorts] == [3] * 7 + [3 + 6 + 1]
        # Later weeks of the first cohorts still show members coming back.
        assert sum(cell["count"] for cell in dashboard.cohorts[0]["cells"][1:]) > 0
        views, carts, checkouts, paid = (bar.value for bar in dashboard.funnel)
        assert views > checkouts >= paid > 0 and carts >= paid
        assert dashboard.reports_waiting >= 1
        assert dashboard.member_share and dashboard.first_time_share


def test_seed_demo_pre_order_batches(settings, django_capture_on_commit_callbacks):
    """One batch open and filling up, one closed and confirmed with paid orders (eager
    Celery settles it when the seed commits; under `make run` the worker does)."""
    settings.DEBUG = True
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", verbosity=0)
    open_batch = PreorderBatch.objects.get(status=BatchStatus.OPEN)
    assert open_batch.tiers.count() == 3 and open_batch.cap and not open_batch.deposit_per_unit
    assert open_batch.product.status == ProductStatus.ACTIVE
    assert open_batch.product.brand.communities.filter(kind="brand").exists()
    assert open_batch.reservations.filter(status=ReservationStatus.HELD).count() == 8
    assert open_batch.reserved_units == sum(r.quantity for r in open_batch.reservations.all())
    assert open_batch.reserved_units < open_batch.min_quantity  # still filling up
    confirmed = PreorderBatch.objects.get(status=BatchStatus.CONFIRMED)
    reservations = list(confirmed.reservations.all())
    assert reservations and all(r.status == ReservationStatus.CHARGED for r in reservations)
    assert all(
        r.order_id and r.amount_charged == r.quantity * confirmed.final_unit_price
        for r in reservations
    )
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", verbosity=0)
    assert PreorderBatch.objects.count() == 2 and Reservation.objects.count() == 14


def test_seed_demo_campaigns(settings, django_capture_on_commit_callbacks):
    settings.DEBUG = True
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", verbosity=0)
    # Campaigns: one live with pledges and a limited tier, one successful with orders and
    # tickets, one failed where nobody was charged.
    statuses = dict(Campaign.objects.values_list("slug", "status"))
    assert sorted(statuses.values()) == [
        CampaignStatus.FAILED,
        CampaignStatus.LIVE,
        CampaignStatus.SUCCESSFUL,
    ]
    live = Campaign.objects.get(status=CampaignStatus.LIVE)
    assert live.pledges.count() >= 3 and live.tiers.filter(limit__isnull=False, claimed__gt=0)
    won = Campaign.objects.get(status=CampaignStatus.SUCCESSFUL)
    assert won.pledges.filter(status="charged", order__isnull=False).exists()
    assert RewardTicket.objects.filter(pledge__campaign=won).exists()
    lost = Campaign.objects.get(status=CampaignStatus.FAILED)
    assert set(lost.pledges.values_list("status", flat=True)) == {"released"}
    assert set(Pledge.objects.filter(campaign=lost).values_list("order", flat=True)) == {None}
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", verbosity=0)
    assert Campaign.objects.count() == 3


def test_seed_demo_refuses_with_debug_off(settings):
    settings.DEBUG = False
    with pytest.raises(Exception, match="DEBUG off"):
        call_command("seed_demo", verbosity=0)
    assert not User.objects.exists()


def test_demo_login_works(client, settings):
    settings.DEBUG = True
    call_command("seed_demo", verbosity=0)
    response = client.post(
        "/accounts/login/", {"login": "lin@fans.example", "password": DEMO_PASSWORD}
    )
    assert response.status_code == 302
    assert "_auth_user_id" in client.session
