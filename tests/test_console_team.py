"""Roles per brand and invitations: an owner invites a colleague by email, the colleague
signs up through the link (allauth) and joins as staff; staff run the shop but not the team
or the brand's settings, and refund only up to the owners' limit; an owner removes them.
Every change leaves its audit entry."""

import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from audit.models import AuditEntry
from catalog.models import BrandInvitation, BrandOperator, BrandRole
from catalog.team import (
    OPERATORS_GROUP,
    OWNERS_GROUP,
    TeamError,
    brand_invitation_accept,
    brand_invitation_create,
    brand_operator_add,
    brand_operator_remove,
    brand_operator_set_role,
)
from orders.models import OrderRefund
from tests.console import operator_of, paid_order
from tests.factories import TEST_PASSWORD, BrandFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def team():
    brand = BrandFactory(name="Nimbus", slug="nimbus", staff_refund_limit=Decimal("50.00"))
    other = BrandFactory(name="Forge", slug="forge")
    return {
        "brand": brand,
        "other": other,
        "owner": operator_of(brand, role=BrandRole.OWNER),
        "staff": operator_of(brand, role=BrandRole.STAFF),
        "other_owner": operator_of(other, role=BrandRole.OWNER),
    }


def _entries(action: str):
    return AuditEntry.objects.filter(action=action)


def _invite(client, owner, brand, email, role="staff", capture=None):
    client.force_login(owner)
    with capture(execute=True):
        return client.post(
            "/admin/catalog/brandinvitation/add/",
            {"brand": brand.pk, "email": email, "role": role},
        )


def _link(message) -> str:
    match = re.search(r"https?://[^/\s]+(/team/invitations/[^\s]+/)", message.body)
    assert match, message.body
    return match.group(1)


def test_an_owner_invites_a_colleague_who_signs_up_through_the_link_and_joins_as_staff(
    client, team, django_capture_on_commit_callbacks
):
    brand, owner = team["brand"], team["owner"]
    client.force_login(owner)
    form = client.get("/admin/catalog/brandinvitation/add/").content.decode()
    # The owner's one brand is the only choice and is preselected; the other brand is absent.
    select = re.search(r'<select name="brand".*?</select>', form, re.S).group(0)
    assert f'<option value="{brand.pk}" selected>' in select
    assert f'value="{team["other"].pk}"' not in select
    response = _invite(
        client, owner, brand, "colleague@example.com", capture=django_capture_on_commit_callbacks
    )
    assert response.status_code == 302
    invitation = BrandInvitation.objects.get()
    assert (invitation.brand, invitation.role, invitation.invited_by) == (brand, "staff", owner)
    (message,) = [m for m in mail.outbox if "colleague@example.com" in m.to]
    link = _link(message)
    assert _entries("team.invite").get().actor == owner

    client.logout()
    page = client.get(link)
    assert page.status_code == 200 and "Create your account" in page.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"{reverse('account_signup')}?next={link}",
            {
                "display_name": "Colleague",
                "email": "colleague@example.com",
                "password1": TEST_PASSWORD,
                "password2": TEST_PASSWORD,
            },
        )
    # The address is verified by the invitation link: signed in and back on the invitation.
    assert response.status_code == 302 and response["Location"] == link
    accept = client.post(link)
    assert accept.status_code == 302 and accept["Location"] == "/admin/"
    colleague = BrandOperator.objects.get(brand=brand, user__email="colleague@example.com")
    assert colleague.role == BrandRole.STAFF
    user = colleague.user
    assert user.is_staff
    assert set(user.groups.values_list("name", flat=True)) == {OPERATORS_GROUP}
    invitation.refresh_from_db()
    assert invitation.accepted_by == user and invitation.status == "accepted"
    assert _entries("team.accept").get().actor == user
    joined = _entries("team.add").get(after__member=user.email)
    assert joined.after == {"member": user.email, "role": "staff"}
    # The link works once: again, it lands in the admin for its user and changes nothing.
    assert client.post(link)["Location"] == "/admin/"
    assert BrandOperator.objects.filter(brand=brand).count() == 3
    assert client.get("/admin/").status_code == 200


def test_an_invitation_is_for_its_address_only(client, team, django_capture_on_commit_callbacks):
    brand = team["brand"]
    with django_capture_on_commit_callbacks(execute=True):
        invitation = brand_invitation_create(
            brand=brand, email="invited@example.com", role="staff", actor=team["owner"]
        )
    stranger = UserFactory(email="someone@example.com")
    client.force_login(stranger)
    page = client.get(invitation.accept_path()).content.decode()
    assert "This invitation is for invited@example.com" in page
    client.post(invitation.accept_path())
    assert not BrandOperator.objects.filter(user=stranger).exists()
    with pytest.raises(TeamError):
        brand_invitation_accept(invitation=invitation, user=stranger)


def test_staff_cannot_invite_manage_the_team_or_change_the_brand(client, team):
    brand, staff, owner = team["brand"], team["staff"], team["owner"]
    entries = AuditEntry.objects.count()
    client.force_login(staff)
    assert client.get("/admin/catalog/brandinvitation/").status_code == 403
    assert client.get("/admin/catalog/brandinvitation/add/").status_code == 403
    response = client.post(
        f"/admin/catalog/brand/{brand.pk}/change/",
        {"name": "Hijacked", "story": "", "staff_refund_limit": "99999"},
    )
    assert response.status_code == 403
    brand.refresh_from_db()
    assert (brand.name, brand.staff_refund_limit) == ("Nimbus", Decimal("50.00"))
    owner_row = BrandOperator.objects.get(user=owner)
    response = client.post(
        f"/admin/catalog/brandoperator/{owner_row.pk}/change/", {"role": "staff"}
    )
    assert response.status_code == 403
    assert client.post(f"/admin/catalog/brandoperator/{owner_row.pk}/delete/", {"post": "yes"})
    assert BrandOperator.objects.get(pk=owner_row.pk).role == BrandRole.OWNER
    assert client.get("/admin/audit/auditentry/").status_code == 403
    # The services say no too, whatever page asks.
    for call in (
        lambda: brand_operator_set_role(operator=owner_row, role="staff", actor=staff),
        lambda: brand_operator_remove(operator=owner_row, actor=staff),
        lambda: brand_invitation_create(
            brand=brand, email="x@example.com", role="owner", actor=staff
        ),
    ):
        with pytest.raises(PermissionDenied):
            call()
    assert AuditEntry.objects.count() == entries  # nothing happened, nothing recorded


def test_an_owner_changes_roles_sets_the_limit_and_removes_a_colleague(client, team):
    brand, staff, owner = team["brand"], team["staff"], team["owner"]
    client.force_login(owner)
    row = BrandOperator.objects.get(user=staff)
    response = client.post(f"/admin/catalog/brandoperator/{row.pk}/change/", {"role": "owner"})
    assert response.status_code == 302
    staff.refresh_from_db()
    assert BrandOperator.objects.get(pk=row.pk).role == BrandRole.OWNER
    assert set(staff.groups.values_list("name", flat=True)) == {OPERATORS_GROUP, OWNERS_GROUP}
    role_entry = _entries("team.role").get()
    assert (role_entry.before["role"], role_entry.after["role"]) == ("staff", "owner")

    response = client.post(
        f"/admin/catalog/brand/{brand.pk}/change/",
        {"name": "Nimbus", "story": "", "staff_refund_limit": "75.50"},
    )
    assert response.status_code == 302
    brand.refresh_from_db()
    assert brand.staff_refund_limit == Decimal("75.50")
    limit = _entries("team.refund_limit").get()
    assert (limit.before, limit.after) == (
        {"staff_refund_limit": "50.00"},
        {"staff_refund_limit": "75.50"},
    )

    response = client.post(f"/admin/catalog/brandoperator/{row.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not BrandOperator.objects.filter(pk=row.pk).exists()
    staff.refresh_from_db()
    assert not staff.is_staff and not staff.groups.exists()
    assert _entries("team.remove").get().before == {"member": staff.email, "role": "owner"}
    # The other brand's team does not exist for this owner.
    theirs = BrandOperator.objects.get(user=team["other_owner"])
    assert client.get(f"/admin/catalog/brandoperator/{theirs.pk}/change/").status_code == 302
    client.post(f"/admin/catalog/brandoperator/{theirs.pk}/delete/", {"post": "yes"})
    assert BrandOperator.objects.filter(pk=theirs.pk).exists()


def test_the_last_owner_stays(client, team):
    owner = team["owner"]
    row = BrandOperator.objects.get(user=owner)
    with pytest.raises(TeamError):
        brand_operator_remove(operator=row, actor=owner)
    with pytest.raises(TeamError):
        brand_operator_set_role(operator=row, role="staff", actor=owner)
    client.force_login(owner)
    response = client.post(f"/admin/catalog/brandoperator/{row.pk}/change/", {"role": "staff"})
    assert response.status_code == 200 and "needs an owner" in response.content.decode()
    assert BrandOperator.objects.get(pk=row.pk).role == BrandRole.OWNER


def test_staff_refund_only_up_to_the_limit_owners_do_not(client, team):
    brand, staff, owner = team["brand"], team["staff"], team["owner"]
    order, part = paid_order(brand, price=Decimal("120.00"))
    url = f"/admin/orders/order/{order.pk}/operate/refund/?part={part.pk}"
    client.force_login(staff)
    response = client.post(url, {"amount": "50.01", "token": "t1"}, follow=True)
    assert "may refund at most" in response.content.decode()
    assert not OrderRefund.objects.exists()
    client.post(url, {"amount": "50.00", "token": "t2"})
    assert OrderRefund.objects.get().amount == Decimal("50.00")
    entry = _entries("order.refund").get()
    assert (entry.actor, entry.brand, entry.object_id) == (staff, brand, str(order.pk))
    assert entry.after["refund"] == "50.00"
    client.force_login(owner)
    client.post(url, {"amount": "70.00", "token": "t3"})
    assert sorted(OrderRefund.objects.values_list("amount", flat=True)) == [
        Decimal("50.00"),
        Decimal("70.00"),
    ]


def test_groups_follow_roles_across_brands(team):
    user = UserFactory()
    brand_operator_add(brand=team["brand"], user=user, role="staff", actor=team["owner"])
    brand_operator_add(brand=team["other"], user=user, role="owner", actor=team["other_owner"])
    assert set(user.groups.values_list("name", flat=True)) == {OPERATORS_GROUP, OWNERS_GROUP}
    brand_operator_remove(
        operator=BrandOperator.objects.get(brand=team["other"], user=user),
        actor=team["other_owner"],
    )
    assert set(user.groups.values_list("name", flat=True)) == {OPERATORS_GROUP}
    assert Group.objects.filter(name=OWNERS_GROUP).exists()
