"""A member's own parts of a community page, kept per member: their membership there (status,
role, points, level), their badges there and which of a page's posts they like.

Every write to a member's memberships, badges or likes retires their token (the models' save
and delete and their querysets' bulk writes call `standing_changed`), so a member's page costs
no query while nothing of theirs changed and shows what they did on their next request. An
entry is named by the token's value, which never comes back, so each process keeps its own
copies without asking anyone whether they are fresh."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import models
from django.template.loader import get_template
from django.utils.translation import get_language

from config.version_tokens import VersionToken

MEMBER_STANDING = VersionToken("communities:standing")  # scope: the member's user id


def standing_changed(user_ids: Iterable[int]) -> None:
    """Retire these members' standings once the write commits."""
    MEMBER_STANDING.retire_many(user_id for user_id in user_ids if user_id is not None)


class StandingQuerySet(models.QuerySet):
    """Bulk writes to rows of a member's standing retire it as the rows' `save()` does."""

    def update(self, **kwargs) -> int:
        standing_changed(self.values_list("user_id", flat=True))
        return super().update(**kwargs)

    def delete(self):
        standing_changed(self.values_list("user_id", flat=True))
        return super().delete()

    def bulk_create(self, objs, *args, **kwargs):
        made = super().bulk_create(objs, *args, **kwargs)
        standing_changed(row.user_id for row in made)
        return made


class StandingRow(models.Model):
    """A row of a member's standing (membership, badge, like): writing it retires theirs."""

    objects = StandingQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs) -> None:
        super().save(*args, **kwargs)
        standing_changed([self.user_id])

    def delete(self, *args, **kwargs):
        standing_changed([self.user_id])
        return super().delete(*args, **kwargs)


@dataclass(frozen=True)
class Standing:
    """The viewer's standing in one community; a non-member has no status and no card."""

    status: str | None
    role: str | None
    is_member: bool
    can_moderate: bool
    card_html: str  # the "You here" card of a member, else ""

    @property
    def key_part(self) -> str:
        return f"{self.status}:{self.role}" if self.status else "-"


_SIZE = 20_000  # entries of a few hundred bytes: a few MB a process at most
_standings: dict[tuple, Standing] = {}
_likes: dict[tuple, frozenset[str]] = {}


def _keep(entries: dict, key: tuple, value) -> None:
    if len(entries) >= _SIZE:
        entries.clear()
    entries[key] = value


def member_standing(*, user, community_id: int, token: str, community_version: str) -> Standing:
    """`user`'s standing in the community, read once per (token, community version, language):
    the card links to the community by its slug, which its version names."""
    key = (token, community_version, community_id, get_language())
    found = _standings.get(key)
    if found is None:
        found = _read_standing(user, community_id)
        _keep(_standings, key, found)
    return found


def _read_standing(user, community_id: int) -> Standing:
    from communities.models import Membership
    from communities.selectors import CommunityView, member_badges

    membership = (
        Membership.objects.select_related("community")
        .filter(community_id=community_id, user=user)
        .first()
    )
    if membership is None:
        return Standing(None, None, False, False, "")
    view = CommunityView(membership.community, membership)
    card = ""
    if view.is_member:
        card = get_template("communities/_honour_card.html").render(
            {"view": view, "community": view.community, "my_badges": member_badges(view=view)}
        )
    return Standing(membership.status, membership.role, view.is_member, view.can_moderate, card)


def liked_among(*, user, token: str, post_ids: list[int]) -> frozenset[str]:
    """Which of `post_ids` `user` likes (as strings, as the page's markers name them)."""
    if not post_ids:
        return frozenset()
    key = (token, tuple(post_ids))
    found = _likes.get(key)
    if found is None:
        from communities.models import Reaction

        found = frozenset(
            str(pk)
            for pk in Reaction.objects.filter(user=user, post_id__in=post_ids).values_list(
                "post_id", flat=True
            )
        )
        _keep(_likes, key, found)
    return found
