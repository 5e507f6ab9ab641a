"""Product ideas: how fans shape the next product. Members propose and upvote; owners and
moderators set the status and answer in public."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, QuerySet

from accounts.models import User
from communities.models import Community, Idea, IdeaStatus, IdeaVote
from communities.services import check_member, check_moderator
from markup.text import text_clean_line


@transaction.atomic
def idea_create(*, community: Community, author: User, title: str, description: str) -> Idea:
    check_member(community=community, user=author)
    idea = Idea(
        community=community,
        author=author,
        title=text_clean_line(title),
        description=description.strip(),
    )
    idea.full_clean()
    idea.save()
    return idea


@transaction.atomic
def idea_upvote_toggle(*, idea: Idea, user: User) -> bool:
    check_member(community=idea.community, user=user)
    deleted, _ = IdeaVote.objects.filter(idea=idea, user=user).delete()
    if deleted:
        Idea.objects.filter(pk=idea.pk).update(vote_count=F("vote_count") - 1)
        return False
    try:
        with transaction.atomic():
            IdeaVote.objects.create(idea=idea, user=user)
    except IntegrityError:
        return True
    Idea.objects.filter(pk=idea.pk).update(vote_count=F("vote_count") + 1)
    return True


@transaction.atomic
def idea_set_status(*, idea: Idea, moderator: User, status: str, response: str) -> Idea:
    check_moderator(community=idea.community, user=moderator)
    if status not in IdeaStatus.values:
        raise ValidationError("Choose a status.")
    if "\x00" in response:  # PostgreSQL refuses NUL in text
        raise ValidationError("The answer contains a character that is not allowed.")
    idea.status, idea.response = status, response.strip()
    idea.full_clean()
    idea.save(update_fields=["status", "response"])
    return idea


def ideas_of(*, community: Community) -> QuerySet[Idea]:
    return (
        Idea.objects.filter(community=community)
        .select_related("author")
        .order_by("-vote_count", "-created_at")
    )
