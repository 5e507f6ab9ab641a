import pytest
from django.contrib.auth.models import Permission

from tests.factories import BrandFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_brands():
    permissions = Permission.objects.filter(codename__in=["view_brand", "change_brand"])
    mine, theirs = BrandFactory(name="Mine"), BrandFactory(name="Theirs")
    operator = UserFactory(is_staff=True)
    operator.user_permissions.add(*permissions)
    mine.operators.add(operator)
    return operator, mine, theirs


def test_operator_sees_only_their_brand(client, two_brands):
    operator, mine, theirs = two_brands
    client.force_login(operator)
    changelist = client.get("/admin/catalog/brand/").content.decode()
    assert "Mine" in changelist
    assert "Theirs" not in changelist
    assert client.get(f"/admin/catalog/brand/{mine.pk}/change/").status_code == 200
    # Another brand's page does not exist for them (the admin redirects with a message).
    response = client.get(f"/admin/catalog/brand/{theirs.pk}/change/")
    assert response.status_code == 302
    response = client.post(
        f"/admin/catalog/brand/{theirs.pk}/change/",
        {"name": "Hijacked", "slug": theirs.slug, "story": ""},
    )
    theirs.refresh_from_db()
    assert theirs.name == "Theirs"


def test_operator_cannot_add_brands_or_manage_users(client, two_brands):
    operator, *_ = two_brands
    client.force_login(operator)
    assert client.get("/admin/catalog/brand/add/").status_code == 403
    assert client.get("/admin/accounts/user/").status_code == 403


def test_superuser_sees_every_brand(admin_client, two_brands):
    changelist = admin_client.get("/admin/catalog/brand/").content.decode()
    assert "Mine" in changelist and "Theirs" in changelist
