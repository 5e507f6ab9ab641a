"""Invite links: a random token in the URL, an expiry and a number of uses, checked and
counted under a row lock when someone joins with it."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from communities.honour import on_member_joined
from communities.models import Community, Invite, Membership, MembershipStatus
from communities.services import _recount_members, check_moderator

# What secrets.token_urlsafe makes: anything else is no invite (and NUL never reaches SQL).
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def invite_for(*, token: str) -> Invite | None:
    if not TOKEN_SHAPE.fullmatch(token):
        return None
    return Invite.objects.select_related("community").filter(token=token).first()


@transaction.atomic
def invite_create(
    *, community: Community, moderator: User, days: int = 7, max_uses: int = 10
) -> Invite:
    check_moderator(community=community, user=moderator)
    return Invite.objects.create(
        community=community,
        created_by=moderator,
        token=secrets.token_urlsafe(24),
        expires_at=timezone.now() + timedelta(days=days),
        max_uses=max_uses,
    )


@transaction.atomic
def invite_accept(*, token: str, user: User) -> Membership:
    invite = (
        Invite.objects.select_for_update().select_related("community").filter(token=token).first()
        if TOKEN_SHAPE.fullmatch(token)
        else None
    )
    if invite is None or invite.expires_at <= timezone.now():
        raise PermissionDenied("This invite link has expired or does not exist.")
    existing = Membership.objects.filter(community=invite.community, user=user).first()
    if existing is not None:
        if existing.status == MembershipStatus.BANNED:
            raise PermissionDenied("You were banned from this community.")
        if existing.is_active:
            return existing
    if invite.uses >= invite.max_uses:
        raise PermissionDenied("This invite link has been used up.")
    Invite.objects.filter(pk=invite.pk).update(uses=F("uses") + 1)
    membership, _ = Membership.objects.update_or_create(
        community=invite.community, user=user, defaults={"status": MembershipStatus.ACTIVE}
    )
    _recount_members(invite.community_id)
    on_member_joined(membership=membership)
    return membership
