"""A brand's team: roles (owner / staff), invitations by email, removal, and the checks
the admin and the other apps ask (is this user an owner of that brand? may they refund
this much?). Every change leaves an audit entry.

Roles are per brand (a user may own one brand and be staff of another); the two groups
give the admin's model permissions and follow the roles: everyone on a team is in "Brand
operators" (the staff's permissions), owners of any brand also in "Brand owners" (the team,
the invitations, the brand's settings, the audit log). What an owner may do to one brand is
still checked against their role there (`is_brand_owner`)."""

from __future__ import annotations

import secrets
from datetime import timedelta
from decimal import Decimal

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.models import User
from audit.services import audit_record
from catalog.models import Brand, BrandInvitation, BrandOperator, BrandRole
from formatting.formats import money
from notifications.services import email_send_on_commit

OPERATORS_GROUP = "Brand operators"
OWNERS_GROUP = "Brand owners"
# What the owners' group adds to the staff's (console/migrations/0001 grants the same).
OWNER_PERMISSIONS = {
    "catalog": [
        "view_brandoperator",
        "change_brandoperator",
        "delete_brandoperator",
        "view_brandinvitation",
        "add_brandinvitation",
    ],
    "audit": ["view_auditentry"],
}
INVITATION_DAYS = 7


class TeamError(ValidationError):
    pass


class RefundLimitError(ValidationError):
    """A brand's staff member asked for a refund above the limit the owners set."""


# --- checks ------------------------------------------------------------------------------


def brand_role(*, user, brand_id: int) -> str | None:
    if not getattr(user, "pk", None):
        return None
    return (
        BrandOperator.objects.filter(user_id=user.pk, brand_id=brand_id)
        .values_list("role", flat=True)
        .first()
    )


def is_brand_owner(*, user, brand_id: int) -> bool:
    """Superusers own every brand; operators by their role in it."""
    if user.is_superuser:
        return True
    return brand_role(user=user, brand_id=brand_id) == BrandRole.OWNER


def owned_brand_ids(*, user) -> set[int]:
    """The brands `user` owns. Kept on the user object for the request (the admin asks on
    every permission check of every page); a role change is seen by the next request."""
    if not getattr(user, "pk", None):
        return set()
    cached = getattr(user, "_owned_brand_ids", None)
    if cached is None:
        cached = set(
            BrandOperator.objects.filter(user_id=user.pk, role=BrandRole.OWNER).values_list(
                "brand_id", flat=True
            )
        )
        user._owned_brand_ids = cached
    return set(cached)


def brand_check_refund(*, brand: Brand, actor, amount: Decimal) -> None:
    """A brand's staff refund at most the limit its owners set, per refund; owners,
    superusers and the system (the shopper's own cancel, a sweep) are not limited."""
    if actor is None or not getattr(actor, "pk", None) or actor.is_superuser:
        return
    if brand_role(user=actor, brand_id=brand.pk) != BrandRole.STAFF:
        return
    limit = Brand.objects.values_list("staff_refund_limit", flat=True).get(pk=brand.pk)
    if amount > limit:
        raise RefundLimitError(
            f"Staff of {brand.name} may refund at most {money(limit)} at once; "
            "ask an owner for this one."
        )


def _check_owner(actor, brand: Brand) -> None:
    if not is_brand_owner(user=actor, brand_id=brand.pk):
        raise PermissionDenied(f"Only an owner of {brand.name} may change its team.")


# --- groups follow the roles ----------------------------------------------------------------


def team_sync_groups(*, user: User) -> None:
    roles = set(BrandOperator.objects.filter(user=user).values_list("role", flat=True))
    operators, _ = Group.objects.get_or_create(name=OPERATORS_GROUP)
    owners, created = Group.objects.get_or_create(name=OWNERS_GROUP)
    if created:  # a database made without the migration's rows (a flushed test database)
        for app_label, codenames in OWNER_PERMISSIONS.items():
            owners.permissions.add(
                *Permission.objects.filter(
                    content_type__app_label=app_label, codename__in=codenames
                )
            )
    if roles:
        user.groups.add(operators)
    else:
        user.groups.remove(operators)
    if BrandRole.OWNER in roles:
        user.groups.add(owners)
    else:
        user.groups.remove(owners)
    is_staff = bool(roles) or user.is_superuser
    if user.is_staff != is_staff:
        user.is_staff = is_staff
        user.save(update_fields=["is_staff"])


# --- roles ---------------------------------------------------------------------------------


@transaction.atomic
def brand_operator_add(*, brand: Brand, user: User, role: str, actor) -> BrandOperator:
    """Put `user` on `brand`'s team with `role` (an owner's or superuser's act, or an
    accepted invitation). Already on it: their role becomes `role`."""
    if role not in BrandRole.values:
        raise TeamError({"role": "Choose owner or staff."})
    if actor is not None:
        _check_owner(actor, brand)
    existing = BrandOperator.objects.select_for_update().filter(brand=brand, user=user).first()
    if existing is not None:
        return brand_operator_set_role(operator=existing, role=role, actor=actor)
    operator = BrandOperator(brand=brand, user=user, role=role)
    operator.full_clean(exclude=["brand", "user"])
    operator.save()
    team_sync_groups(user=user)
    audit_record(
        actor=actor,
        action="team.add",
        obj=brand,
        brand_id=brand.pk,
        before={},
        after={"member": user.email, "role": role},
    )
    return operator


def _owners_left(brand_id: int, without: int) -> int:
    return (
        BrandOperator.objects.select_for_update()
        .filter(brand_id=brand_id, role=BrandRole.OWNER)
        .exclude(pk=without)
        .count()
    )


@transaction.atomic
def brand_operator_set_role(*, operator: BrandOperator, role: str, actor) -> BrandOperator:
    if role not in BrandRole.values:
        raise TeamError({"role": "Choose owner or staff."})
    operator = (
        BrandOperator.objects.select_for_update()
        .select_related("brand", "user")
        .get(pk=operator.pk)
    )
    if actor is not None:
        _check_owner(actor, operator.brand)
    if operator.role == role:
        return operator
    if operator.role == BrandRole.OWNER and not _owners_left(operator.brand_id, operator.pk):
        raise TeamError(f"{operator.brand.name} needs an owner: make someone else owner first.")
    before = operator.role
    operator.role = role
    operator.save(update_fields=["role"])
    team_sync_groups(user=operator.user)
    audit_record(
        actor=actor,
        action="team.role",
        obj=operator.brand,
        brand_id=operator.brand_id,
        before={"member": operator.user.email, "role": before},
        after={"member": operator.user.email, "role": role},
    )
    return operator


@transaction.atomic
def brand_operator_remove(*, operator: BrandOperator, actor) -> None:
    """Take `operator` off the brand's team: they keep their account, not the admin of
    this brand. The last owner stays."""
    operator = (
        BrandOperator.objects.select_for_update()
        .select_related("brand", "user")
        .filter(pk=operator.pk)
        .first()
    )
    if operator is None:
        return  # a twin submit removed them already
    if actor is not None:
        _check_owner(actor, operator.brand)
    if operator.role == BrandRole.OWNER and not _owners_left(operator.brand_id, operator.pk):
        raise TeamError(f"{operator.brand.name} needs an owner: make someone else owner first.")
    operator.delete()
    team_sync_groups(user=operator.user)
    audit_record(
        actor=actor,
        action="team.remove",
        obj=operator.brand,
        brand_id=operator.brand_id,
        before={"member": operator.user.email, "role": operator.role},
        after={},
    )


@transaction.atomic
def brand_refund_limit_set(*, brand: Brand, limit: Decimal, actor) -> Brand:
    brand = Brand.objects.select_for_update().get(pk=brand.pk)
    _check_owner(actor, brand)
    before = brand.staff_refund_limit
    if before == limit:
        return brand
    brand.staff_refund_limit = limit
    brand.full_clean()
    brand.save(update_fields=["staff_refund_limit"])
    audit_record(
        actor=actor,
        action="team.refund_limit",
        obj=brand,
        brand_id=brand.pk,
        before={"staff_refund_limit": before},
        after={"staff_refund_limit": limit},
    )
    return brand


# --- invitations ---------------------------------------------------------------------------


def brand_invitation_create(
    *, brand: Brand, email: str, role: str, actor: User, site_url: str = ""
) -> BrandInvitation:
    """An owner invites `email` to the team with `role`; the email with the link is sent
    once the transaction commits. An address already on the team, or with an open
    invitation, is refused."""
    email = (email or "").strip()
    _check_owner(actor, brand)
    if BrandOperator.objects.filter(brand=brand, user__email__iexact=email).exists():
        raise TeamError({"email": f"{email} is already on {brand.name}'s team."})
    invitation = BrandInvitation(
        brand=brand,
        email=email,
        role=role,
        token=secrets.token_urlsafe(32),
        invited_by=actor,
        expires_at=timezone.now() + timedelta(days=INVITATION_DAYS),
    )
    invitation.full_clean(exclude=["token"], validate_constraints=False)
    try:
        with transaction.atomic():
            invitation.save()
            audit_record(
                actor=actor,
                action="team.invite",
                obj=invitation,
                brand_id=brand.pk,
                after={"email": email, "role": role},
            )
            _invitation_email(invitation, site_url or settings.SITE_URL)
    except IntegrityError as exc:
        raise TeamError(
            {"email": f"{email} already has an open invitation to {brand.name}."}
        ) from exc
    return invitation


def _invitation_email(invitation: BrandInvitation, site_url: str) -> None:
    context = {
        "invitation": invitation,
        "url": site_url.rstrip("/") + invitation.accept_path(),
        "days": INVITATION_DAYS,
    }
    message = EmailMultiAlternatives(
        subject=f"[Fanhub] Join {invitation.brand.name}'s team",
        body=render_to_string("catalog/email/invitation.txt", context),
        to=[invitation.email],
    )
    email_send_on_commit(message=message)


@transaction.atomic
def brand_invitation_revoke(*, invitation: BrandInvitation, actor: User) -> BrandInvitation:
    invitation = (
        BrandInvitation.objects.select_for_update().select_related("brand").get(pk=invitation.pk)
    )
    _check_owner(actor, invitation.brand)
    if invitation.status != "open":
        return invitation
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    audit_record(
        actor=actor,
        action="team.revoke",
        obj=invitation,
        brand_id=invitation.brand_id,
        before={"status": "open"},
        after={"status": "revoked"},
    )
    return invitation


def invitation_email_matches(*, invitation: BrandInvitation, user: User) -> bool:
    """The signed-in user holds the invited address, verified (the link came to it)."""
    return EmailAddress.objects.filter(
        user=user, email__iexact=invitation.email, verified=True
    ).exists()


@transaction.atomic
def brand_invitation_accept(*, invitation: BrandInvitation, user: User) -> BrandOperator:
    """The invited colleague, signed in with the invited address, joins the team. Twice at
    once (a double click): the second finds it accepted by them and changes nothing."""
    invitation = (
        BrandInvitation.objects.select_for_update().select_related("brand").get(pk=invitation.pk)
    )
    if invitation.accepted_by_id == user.pk and invitation.accepted_at:
        return BrandOperator.objects.get(brand=invitation.brand, user=user)
    if invitation.status != "open":
        raise TeamError(f"This invitation is {invitation.status}.")
    if not invitation_email_matches(invitation=invitation, user=user):
        raise TeamError(
            f"This invitation is for {invitation.email}: sign in with that address to accept it."
        )
    operator = brand_operator_add(
        brand=invitation.brand, user=user, role=invitation.role, actor=None
    )
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    audit_record(
        actor=user,
        action="team.accept",
        obj=invitation,
        brand_id=invitation.brand_id,
        before={"status": "open"},
        after={"status": "accepted", "member": user.email, "role": invitation.role},
    )
    return operator
