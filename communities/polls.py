"""Co-creation polls: one vote per member (several options when the poll allows it), counted
under a row lock of the poll so that two concurrent votes by the same member count once."""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F

from accounts.models import User
from communities.feed_cache import feed_changed
from communities.models import Community, Poll, PollOption, PollVote, Post
from communities.rate_limits import rate_limited
from communities.services import check_member, post_create
from markup.text import text_clean_line

MAX_OPTIONS = 10


@transaction.atomic
def poll_create(
    *,
    post: Post,
    question: str,
    options: list[str],
    multiple: bool = False,
    closes_at: datetime | None = None,
) -> Poll:
    options = [text_clean_line(text) for text in options if text_clean_line(text)]
    question = text_clean_line(question)
    if not question:
        raise ValidationError("Write the poll's question.")
    if not 2 <= len(options) <= MAX_OPTIONS:
        raise ValidationError(f"A poll needs between 2 and {MAX_OPTIONS} options.")
    if len(set(map(str.lower, options))) != len(options):
        raise ValidationError("Each option must be different.")
    poll = Poll.objects.create(
        post=post, question=question[:200], multiple=multiple, closes_at=closes_at
    )
    PollOption.objects.bulk_create(
        [PollOption(poll=poll, text=text[:120], position=n) for n, text in enumerate(options)]
    )
    feed_changed(community_id=post.community_id)  # the card names the poll
    return poll


@transaction.atomic
def post_with_poll_create(
    *,
    community: Community,
    author: User,
    title: str,
    body: str,
    image=None,
    announcement: bool = False,
    poll_question: str = "",
    poll_options: list[str] | None = None,
    poll_multiple: bool = False,
    poll_closes_at: datetime | None = None,
) -> Post:
    """A post, and its poll when the form asked for one: both or neither, and counted against
    the posting limit only when both are accepted."""
    with rate_limited(user=author, action="post"):
        post = post_create(
            community=community,
            author=author,
            title=title,
            body=body,
            image=image,
            announcement=announcement,
            rate_limited=False,
        )
        if poll_question:
            poll_create(
                post=post,
                question=poll_question,
                options=poll_options or [],
                multiple=poll_multiple,
                closes_at=poll_closes_at,
            )
    return post


@transaction.atomic
def poll_vote(*, poll: Poll, user: User, option_ids: list[int]) -> None:
    poll = Poll.objects.select_for_update().select_related("post__community").get(pk=poll.pk)
    check_member(community=poll.post.community, user=user)
    if poll.is_closed:
        raise ValidationError("This poll is closed.")
    if PollVote.objects.filter(poll=poll, user=user).exists():
        raise ValidationError("You have already voted in this poll.")
    chosen = list(PollOption.objects.filter(poll=poll, pk__in=option_ids))
    if not chosen:
        raise ValidationError("Choose an option.")
    if len(chosen) > 1 and not poll.multiple:
        raise ValidationError("Choose one option.")
    PollVote.objects.bulk_create(
        [PollVote(poll=poll, option=option, user=user) for option in chosen]
    )
    PollOption.objects.filter(pk__in=[o.pk for o in chosen]).update(vote_count=F("vote_count") + 1)


def poll_results(*, poll: Poll, user: User) -> dict:
    """Options with counts and shares; `show` is False until the user voted or it closed."""
    voted = user.is_authenticated and PollVote.objects.filter(poll=poll, user=user).exists()
    options = list(poll.options.all())
    voters = PollVote.objects.filter(poll=poll).values("user_id").distinct().count()
    total = sum(option.vote_count for option in options)
    for option in options:
        option.share = round(100 * option.vote_count / total) if total else 0
    return {
        "poll": poll,
        "options": options,
        "voters": voters,
        "voted": voted,
        "show": voted or poll.is_closed,
    }
