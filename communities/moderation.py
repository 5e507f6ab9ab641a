"""Reports, the moderators' queue, automatic hiding, and posting limits against spam."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import User
from communities.feed_cache import feed_changed
from communities.honour import level_for
from communities.models import Comment, Community, Membership, Post, Report
from communities.services import (
    audit_moderation,
    check_member,
    check_moderator,
    check_outranks,
)
from markup.text import text_clean_line

# Reports from this many trusted members (level 2 and up) hide a post until reviewed.
TRUSTED_REPORTS_TO_HIDE = 3
TRUSTED_LEVEL = 2


@transaction.atomic
def report_create(
    *, reporter: User, reason: str, post: Post | None = None, comment: Comment | None = None
) -> Report:
    target_post = post or comment.post
    check_member(community=target_post.community, user=reporter)
    reason = text_clean_line(reason)
    if not reason:
        raise ValidationError("Say why this should be looked at.")
    try:
        with transaction.atomic():
            report = Report.objects.create(
                community=target_post.community,
                post=post,
                comment=comment,
                reporter=reporter,
                reason=reason[:300],
            )
    except IntegrityError as exc:
        raise ValidationError("You have already reported this.") from exc
    if post is not None:
        trusted = [
            points
            for points in Membership.objects.filter(
                community=post.community,
                user_id__in=Report.objects.filter(post=post, resolved_at__isnull=True).values(
                    "reporter_id"
                ),
            ).values_list("points", flat=True)
            if level_for(points) >= TRUSTED_LEVEL
        ]
        if len(trusted) >= TRUSTED_REPORTS_TO_HIDE:
            Post.objects.filter(pk=post.pk, hidden_at__isnull=True).update(hidden_at=timezone.now())
            feed_changed(community_id=post.community_id)
    return report


def moderation_queue(*, community: Community, moderator: User) -> QuerySet[Report]:
    check_moderator(community=community, user=moderator)
    return (
        Report.objects.filter(community=community, resolved_at__isnull=True)
        .select_related("post", "comment", "reporter")
        .order_by("created_at")
    )


@transaction.atomic
def report_resolve(*, report: Report, moderator: User, hide: bool) -> None:
    """Hide the reported post or comment, or restore it (the reports were unfounded). A
    moderator decides only on content by members ranked below them."""
    actor = check_moderator(community=report.community, user=moderator)
    author_id = report.post.author_id if report.post_id else report.comment.author_id
    check_outranks(actor=actor, target_user_id=author_id, community=report.community)
    report_resolve_as_operator(report=report, hide=hide, actor=moderator)


@transaction.atomic
def report_resolve_as_operator(*, report: Report, hide: bool, actor: User | None = None) -> None:
    """For the admin, whose brand scoping already checked the operator. The decision is
    audited as `actor`'s, on the post or comment."""
    target = (
        Post.objects.filter(pk=report.post_id)
        if report.post_id
        else Comment.objects.filter(pk=report.comment_id)
    )
    audit_moderation(
        actor=actor,
        action="report.resolve",
        obj=target.get(),
        hidden=hide,
        after={"resolution": "hidden" if hide else "restored"},
    )
    target.update(hidden_at=timezone.now() if hide else None)
    feed_changed(community_id=report.community_id)
    same_target = (
        {"post_id": report.post_id} if report.post_id else {"comment_id": report.comment_id}
    )
    Report.objects.filter(resolved_at__isnull=True, **same_target).update(
        resolved_at=timezone.now(), resolution="hidden" if hide else "restored"
    )
