"""Every write in communities. Permission checks live here too (`check_*`), so that a view,
a task or the admin cannot skip them."""

from __future__ import annotations

import re

from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.models import User
from audit.services import audit_record
from catalog.search_words import search_words_add
from communities.feed_cache import community_changed, feed_changed
from communities.honour import (
    leaderboard_cache_key,
    on_like_received,
    on_member_joined,
    on_post_created,
)
from communities.models import (
    Comment,
    Community,
    Membership,
    MembershipStatus,
    Post,
    PostKind,
    Reaction,
    Role,
    Visibility,
)
from communities.rate_limits import rate_limited as _rate_limited
from markup.markdown import markdown_render
from markup.text import text_clean_line
from notifications.models import NotificationKind
from notifications.services import notification_fan_out, notification_send
from uploads.images import image_verify_and_reencode

POST_IMAGE_MAX_SIDE = 1600


def membership_of(*, community: Community, user: User) -> Membership | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(community=community, user=user).first()


def check_member(*, community: Community, user: User) -> Membership:
    membership = membership_of(community=community, user=user)
    if membership is None or not membership.is_active:
        raise PermissionDenied("Only members can do this. Join the community first.")
    return membership


def check_moderator(*, community: Community, user: User) -> Membership:
    membership = check_member(community=community, user=user)
    if not membership.can_moderate:
        raise PermissionDenied("Only the community's owners and moderators can do this.")
    return membership


# Who may act on whom: a moderator acts (ban, hide, role changes) only on members ranked below
# them; owners on moderators and members; nobody here on another owner.
RANK = {Role.OWNER: 3, Role.MODERATOR: 2, Role.MEMBER: 1}


def _rank_of(membership: Membership | None) -> int:
    """0 for a non-member or a banned or pending member: anyone's moderator outranks them."""
    if membership is None or not membership.is_active:
        return 0
    return RANK[membership.role]


def check_outranks(*, actor: Membership, target_user_id: int, community: Community) -> None:
    """PermissionDenied unless `actor` ranks above the target's role in this community."""
    target = Membership.objects.filter(community=community, user_id=target_user_id).first()
    if User.objects.filter(pk=target_user_id, is_staff=True).exists() and not (
        actor.user.is_superuser
    ):  # Fanhub's staff and brand operators are not a community moderator's to ban
        raise PermissionDenied("Fanhub staff and brand teams cannot be moderated here.")
    if _rank_of(target) >= _rank_of(actor):
        raise PermissionDenied(
            "You can act only on members below your role: ask an owner."
            if actor.role == Role.MODERATOR
            else "Owners cannot act on other owners here."
        )


def check_owners_remain(
    *, community_id: int, leaving: set[int], joining: frozenset[int] | set[int] = frozenset()
) -> None:
    """The one rule: a community that has an active owner keeps one. ValidationError when the
    memberships in `leaving` stop being active owners and those in `joining` become owners
    and no active owner is left. The active owners' rows are locked, in id order, so two
    concurrent demotions (or departures) of the last two owners cannot both pass."""
    owners = set(
        Membership.objects.select_for_update()
        .filter(community_id=community_id, role=Role.OWNER, status=MembershipStatus.ACTIVE)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if owners & leaving and not (owners - leaving) | joining:
        raise ValidationError(
            "The community needs an active owner: make someone else an owner first."
        )


def check_owner_remains(*, membership: Membership, role: str, status: str) -> None:
    """`check_owners_remain` for one membership given this role and status (or removed,
    with status "")."""
    stays_owner = role == Role.OWNER and status == MembershipStatus.ACTIVE
    check_owners_remain(
        community_id=membership.community_id,
        leaving=set() if stays_owner else {membership.pk},
    )


def _recount_members(community_id: int) -> None:
    Community.objects.filter(pk=community_id).update(
        member_count=Membership.objects.filter(
            community_id=community_id, status=MembershipStatus.ACTIVE
        ).count()
    )
    community_changed(community_id=community_id)  # the count on its page


@transaction.atomic
def community_join(*, community: Community, user: User) -> Membership:
    """Public: a member at once. Private: a request the moderators approve. Invite-only:
    refused here (the invite link is the way in). A banned user stays banned."""
    existing = membership_of(community=community, user=user)
    if existing is not None:
        if existing.status == MembershipStatus.BANNED:
            raise PermissionDenied("You were banned from this community.")
        return existing
    if community.visibility == Visibility.INVITE_ONLY:
        raise PermissionDenied("This community is invite-only: ask a member for an invite link.")
    status = (
        MembershipStatus.ACTIVE
        if community.visibility == Visibility.PUBLIC
        else MembershipStatus.PENDING
    )
    try:
        with transaction.atomic():
            membership = Membership.objects.create(community=community, user=user, status=status)
    except IntegrityError:  # a double submit
        return Membership.objects.get(community=community, user=user)
    _recount_members(community.pk)
    if membership.is_active:
        on_member_joined(membership=membership)
    return membership


@transaction.atomic
def community_leave(*, community: Community, user: User) -> None:
    membership = membership_of(community=community, user=user)
    if membership is None or membership.status == MembershipStatus.BANNED:
        return  # leaving cannot lift a ban
    try:
        check_owner_remains(membership=membership, role="", status="")
    except ValidationError as exc:
        raise ValidationError("You are the only owner: make someone else an owner first.") from exc
    membership.delete()
    _recount_members(community.pk)


@transaction.atomic
def membership_decide(*, membership: Membership, moderator: User, approve: bool) -> None:
    check_moderator(community=membership.community, user=moderator)
    if membership.status != MembershipStatus.PENDING:
        return
    if approve:
        membership.status = MembershipStatus.ACTIVE
        membership.save(update_fields=["status"])
        _recount_members(membership.community_id)
        on_member_joined(membership=membership)
        notification_send(
            recipient_id=membership.user_id,
            kind=NotificationKind.JOIN_APPROVED,
            title=f"Welcome to {membership.community.name}",
            url=membership.community.get_absolute_url(),
        )
    else:
        membership.delete()


def _audit_membership(*, actor, action: str, membership: Membership, before: dict) -> None:
    # Who may post and moderate is access: each change of a membership by someone else is
    # audited, for the brand whose fan club it is (a standalone circle's: superusers only).
    removed = action == "membership.remove"
    audit_record(
        actor=actor,
        action=action,
        obj=membership,
        brand_id=Community.objects.values_list("brand_id", flat=True).get(
            pk=membership.community_id
        ),
        before=before,
        after={} if removed else {"role": membership.role, "status": membership.status},
        parent=membership.community,
    )


def audit_moderation(
    *, actor: User | None, action: str, obj: Post | Comment, hidden: bool, after: dict | None = None
) -> None:
    """A moderator's or operator's hiding (`hidden`) or restoring of a post or comment."""
    community_id = obj.community_id if isinstance(obj, Post) else obj.post.community_id
    audit_record(
        actor=actor,
        action=action,
        obj=obj,
        brand_id=Community.objects.values_list("brand_id", flat=True).get(pk=community_id),
        before={"hidden": obj.hidden_at is not None},
        after={"hidden": hidden, **(after or {})},
    )


@transaction.atomic
def member_ban(*, community: Community, user: User, moderator: User) -> None:
    actor = check_moderator(community=community, user=moderator)
    if user.pk == moderator.pk:
        raise ValidationError("You cannot ban yourself.")
    check_outranks(actor=actor, target_user_id=user.pk, community=community)
    existing = Membership.objects.filter(community=community, user=user).first()
    if existing is not None:
        check_owner_remains(membership=existing, role=Role.MEMBER, status=MembershipStatus.BANNED)
    membership, _created = Membership.objects.update_or_create(
        community=community,
        user=user,
        defaults={"status": MembershipStatus.BANNED, "role": Role.MEMBER},
    )
    _audit_membership(
        actor=moderator,
        action="member.ban",
        membership=membership,
        before={"role": existing.role, "status": existing.status} if existing else {},
    )
    _recount_members(community.pk)
    key = leaderboard_cache_key(community.pk)  # a banned member leaves the boards at once
    transaction.on_commit(lambda: cache.delete(key), robust=True)


@transaction.atomic
def membership_set_role(*, membership: Membership, actor: User, role: str) -> Membership:
    """An owner promotes or demotes a member or moderator (not another owner); moderators
    have no one below them to give a role to but members, and give no roles."""
    if role not in Role.values:
        raise ValidationError("Choose a role.")
    acting = check_moderator(community=membership.community, user=actor)
    if membership.user_id == actor.pk:
        raise ValidationError("You cannot change your own role.")
    check_outranks(actor=acting, target_user_id=membership.user_id, community=membership.community)
    if acting.role != Role.OWNER:
        raise PermissionDenied("Only owners give roles.")
    return membership_update_as_operator(
        membership=membership, role=role, status=membership.status, actor=actor
    )


@transaction.atomic
def membership_update_as_operator(
    *, membership: Membership, role: str, status: str, actor: User | None = None
) -> Membership:
    """For the admin (brand scoping already checked the operator) and `membership_set_role`:
    any role or status (a ban lifted included), but the last active owner is never demoted,
    banned or left pending. The change is audited as `actor`'s."""
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    if (membership.role, membership.status) == (role, status):
        return membership
    check_owner_remains(membership=membership, role=role, status=status)
    was_active = membership.is_active
    before = {"role": membership.role, "status": membership.status}
    membership.role, membership.status = role, status
    membership.full_clean()
    membership.save(update_fields=["role", "status"])
    _audit_membership(actor=actor, action="membership.edit", membership=membership, before=before)
    _recount_members(membership.community_id)
    if membership.is_active and not was_active:
        on_member_joined(membership=membership)
    return membership


@transaction.atomic
def membership_remove_as_operator(*, membership: Membership, actor: User | None = None) -> None:
    """For the admin: remove a membership, never the last active owner's."""
    membership = Membership.objects.select_for_update().filter(pk=membership.pk).first()
    if membership is None:
        return
    check_owner_remains(membership=membership, role="", status="")
    _audit_membership(
        actor=actor,
        action="membership.remove",
        membership=membership,
        before={"role": membership.role, "status": membership.status},
    )
    membership.delete()
    _recount_members(membership.community_id)


MENTION = re.compile(r"(?<![\w@])@([\w.\-]{2,50})")


def mentioned_members(*, community: Community, author: User, text: str) -> list[int]:
    """The active members (not the author) that `text` @mentions, by handle (any case) or,
    as before handles, by a display name without spaces. Each member once."""
    names = {name.lower() for name in MENTION.findall(text)}
    # "@maya." at the end of a sentence: the handle without trailing punctuation.
    names |= {name.rstrip(".-_") for name in names}
    names.discard("")
    if not names:
        return []
    return list(
        Membership.objects.annotate(name_lower=Lower("user__display_name"))
        .filter(community=community, status=MembershipStatus.ACTIVE)
        .filter(Q(user__handle__in=names) | Q(name_lower__in=names))
        .exclude(user=author)
        .values_list("user_id", flat=True)
        .distinct()
    )


def _notify_mentions(
    *, community: Community, author: User, text: str, title: str, url: str
) -> None:
    """@handle (or @name) notifies the members of this community it names."""
    for user_id in mentioned_members(community=community, author=author, text=text):
        notification_send(recipient_id=user_id, kind=NotificationKind.MENTION, title=title, url=url)


def _image(upload: UploadedFile | None):
    return image_verify_and_reencode(upload, max_side=POST_IMAGE_MAX_SIDE) if upload else None


@transaction.atomic
def post_create(
    *,
    community: Community,
    author: User,
    title: str,
    body: str,
    image: UploadedFile | None = None,
    announcement: bool = False,
    rate_limited: bool = True,
) -> Post:
    """`rate_limited=False` only for trusted callers (seed_demo), never from a request. Only
    an accepted post counts against the limit: a refusal (bad image, bad title) gives its
    place back."""
    rate_limited_on = rate_limited
    membership = check_member(community=community, user=author)
    if announcement and not membership.can_moderate:
        raise PermissionDenied("Only owners and moderators post announcements.")
    with _rate_limited(user=author, action="post", enabled=rate_limited_on):
        return _post_create(
            community=community,
            author=author,
            title=title,
            body=body,
            image=image,
            announcement=announcement,
        )


def post_create_from_brand(*, community: Community, author: User, title: str, body: str) -> Post:
    """A post the brand's own apps make in its community (a campaign's public update): the
    caller has checked that `author` acts for the brand, so no membership or rate limit."""
    return _post_create(
        community=community, author=author, title=title, body=body, image=None, announcement=False
    )


def _post_create(
    *,
    community: Community,
    author: User,
    title: str,
    body: str,
    image: UploadedFile | None,
    announcement: bool,
) -> Post:
    verified = _image(image)  # before any row exists: a bad image changes nothing
    post = Post(
        community=community,
        author=author,
        title=text_clean_line(title),
        body=body,
        body_html=markdown_render(body),
        kind=PostKind.ANNOUNCEMENT if announcement else PostKind.POST,
    )
    post.full_clean(exclude=["image", "body_html"])
    if verified:
        post.image.save(verified.content.name, verified.content, save=False)
    post.save()
    feed_changed(community_id=community.pk)
    search_words_add(texts=[post.title, post.body])  # found by a mistyped search
    on_post_created(post=post)
    _notify_mentions(
        community=community,
        author=author,
        text=body,
        title=f"{author.public_name} mentioned you in “{post.title}”",
        url=post.get_absolute_url(),
    )
    if announcement:
        recipients = (
            Membership.objects.filter(community=community, status=MembershipStatus.ACTIVE)
            .exclude(user=author)
            .values_list("user_id", flat=True)
            .iterator()
        )
        notification_fan_out(
            recipient_ids=recipients,
            kind=NotificationKind.ANNOUNCEMENT,
            title=f"{community.name}: {post.title}",
            url=post.get_absolute_url(),
        )
    return post


@transaction.atomic
def post_update(*, post: Post, editor: User, title: str, body: str) -> Post:
    if post.author_id != editor.pk or not post.is_visible:
        raise PermissionDenied("Only the author can edit this post.")
    before = set(mentioned_members(community=post.community, author=editor, text=post.body))
    post.title, post.body, post.body_html = text_clean_line(title), body, markdown_render(body)
    post.edited_at = timezone.now()
    post.full_clean(exclude=["image", "body_html"])
    post.save(update_fields=["title", "body", "body_html", "edited_at"])
    feed_changed(community_id=post.community_id)
    search_words_add(texts=[post.title, post.body])
    # Members the edit mentions for the first time are told; those mentioned before, not again.
    for user_id in mentioned_members(community=post.community, author=editor, text=body):
        if user_id not in before:
            notification_send(
                recipient_id=user_id,
                kind=NotificationKind.MENTION,
                title=f"{editor.public_name} mentioned you in “{post.title}”",
                url=post.get_absolute_url(),
            )
    return post


@transaction.atomic
def post_delete(*, post: Post, user: User) -> None:
    """The author deletes (kept for moderation history); a moderator hides."""
    feed_changed(community_id=post.community_id)  # on commit: a refusal rolls back first
    if post.author_id == user.pk:
        Post.objects.filter(pk=post.pk).update(deleted_at=timezone.now())
        return
    actor = check_moderator(community=post.community, user=user)
    check_outranks(actor=actor, target_user_id=post.author_id, community=post.community)
    if Post.objects.filter(pk=post.pk, hidden_at__isnull=True).update(hidden_at=timezone.now()):
        audit_moderation(actor=user, action="post.hide", obj=post, hidden=True)


@transaction.atomic
def post_set_pinned(*, post: Post, moderator: User, pinned: bool) -> None:
    actor = check_moderator(community=post.community, user=moderator)
    if post.author_id != moderator.pk:  # the author's own post, or one of a member below
        check_outranks(actor=actor, target_user_id=post.author_id, community=post.community)
    Post.objects.filter(pk=post.pk).update(is_pinned=pinned)
    feed_changed(community_id=post.community_id)


@transaction.atomic
def post_like_toggle(*, post: Post, user: User) -> bool:
    """Like or unlike. Returns True when the post is now liked. The count moves by one with
    F(), so concurrent likes never lose one."""
    check_member(community=post.community, user=user)
    feed_changed(community_id=post.community_id)  # the count on the card moves either way
    deleted, _ = Reaction.objects.filter(post=post, user=user).delete()
    if deleted:
        Post.objects.filter(pk=post.pk).update(like_count=F("like_count") - 1)
        return False
    try:
        with transaction.atomic():
            Reaction.objects.create(post=post, user=user)
    except IntegrityError:  # a double click
        return True
    Post.objects.filter(pk=post.pk).update(like_count=F("like_count") + 1)
    if post.author_id != user.pk:
        received = (
            Reaction.objects.filter(post__author_id=post.author_id, post__community=post.community)
            .exclude(user_id=post.author_id)
            .count()
        )
        on_like_received(post=post, liker_id=user.pk, total_likes_received=received)
        notification_send(
            recipient_id=post.author_id,
            kind=NotificationKind.LIKE,
            title=f"{user.public_name} liked “{post.title}”",
            url=post.get_absolute_url(),
        )
    return True


@transaction.atomic
def comment_create(
    *,
    post: Post,
    author: User,
    body: str,
    parent: Comment | None = None,
    rate_limited: bool = True,
) -> Comment:
    check_member(community=post.community, user=author)
    if not post.is_visible:
        raise ValidationError("This post is no longer open for comments.")
    if parent is not None:
        if parent.post_id != post.pk:
            raise ValidationError("You can only reply to a comment on this post.")
        if parent.hidden_at or parent.deleted_at:
            raise ValidationError("The comment you replied to is no longer there.")
        parent = parent.parent or parent  # one level: replies to a reply join its thread
    body = body.strip()
    if not body:
        raise ValidationError("Write something first.")
    with _rate_limited(user=author, action="comment", enabled=rate_limited):
        comment = Comment.objects.create(
            post=post, author=author, parent=parent, body=body, body_html=markdown_render(body)
        )
    Post.objects.filter(pk=post.pk).update(comment_count=F("comment_count") + 1)
    feed_changed(community_id=post.community_id)
    _notify_mentions(
        community=post.community,
        author=author,
        text=body,
        title=f"{author.public_name} mentioned you on “{post.title}”",
        url=post.get_absolute_url(),
    )
    to_notify = {post.author_id} | ({parent.author_id} if parent else set())
    for recipient_id in to_notify - {author.pk}:
        notification_send(
            recipient_id=recipient_id,
            kind=NotificationKind.REPLY,
            title=f"{author.public_name} replied to “{post.title}”",
            body=body[:200],
            url=post.get_absolute_url(),
        )
    return comment


@transaction.atomic
def comment_delete(*, comment: Comment, user: User) -> None:
    """The author deletes, a moderator hides; the post's count drops once, however often (or
    however concurrently) it is asked: only the UPDATE that takes the comment from visible to
    gone (Postgres re-checks the WHERE after a concurrent one) lowers it."""
    still_visible = Comment.objects.filter(
        pk=comment.pk, hidden_at__isnull=True, deleted_at__isnull=True
    )
    if comment.author_id == user.pk:
        changed = still_visible.update(deleted_at=timezone.now())
    else:
        actor = check_moderator(community=comment.post.community, user=user)
        check_outranks(
            actor=actor, target_user_id=comment.author_id, community=comment.post.community
        )
        changed = still_visible.update(hidden_at=timezone.now())
        if changed:
            audit_moderation(actor=user, action="comment.hide", obj=comment, hidden=True)
    if not changed:
        return
    Post.objects.filter(pk=comment.post_id, comment_count__gt=0).update(
        comment_count=F("comment_count") - 1
    )
    feed_changed(community_id=comment.post.community_id)
