from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse

from catalog.models import Brand
from communities.media import post_image_storage
from communities.standing import StandingRow


class CommunityKind(models.TextChoices):
    BRAND = "brand", "Brand fan club"
    REGION = "region", "Regional circle"
    HOBBY = "hobby", "Hobby circle"


class Visibility(models.TextChoices):
    PUBLIC = "public", "Public: anyone can read and join"
    PRIVATE = "private", "Private: members only; joining needs approval"
    INVITE_ONLY = "invite_only", "Invite only: join by an invite link"


class Community(models.Model):
    # A fan club belongs to its brand (its operators run it); a regional or hobby circle may
    # stand alone (superusers run it).
    brand_lookup = "brand"

    brand = models.ForeignKey(
        Brand, on_delete=models.PROTECT, null=True, blank=True, related_name="communities"
    )
    kind = models.CharField(max_length=10, choices=CommunityKind.choices)
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=120, unique=True)
    description = models.TextField(blank=True, help_text="Markdown.")
    description_html = models.TextField(blank=True, editable=False)
    rules = models.TextField(blank=True, help_text="Markdown.")
    rules_html = models.TextField(blank=True, editable=False)
    cover = models.ImageField(upload_to="communities/covers/", blank=True)
    visibility = models.CharField(
        max_length=12, choices=Visibility.choices, default=Visibility.PUBLIC
    )
    member_count = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-member_count", "name"]
        verbose_name_plural = "communities"
        indexes = [models.Index(fields=["kind", "-member_count"], name="communities_by_kind")]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("communities:detail", kwargs={"slug": self.slug})

    @property
    def is_public(self) -> bool:
        return self.visibility == Visibility.PUBLIC


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    MODERATOR = "moderator", "Moderator"
    MEMBER = "member", "Member"


class MembershipStatus(models.TextChoices):
    ACTIVE = "active", "Member"
    PENDING = "pending", "Asked to join"
    BANNED = "banned", "Banned"


class Membership(StandingRow):
    brand_lookup = "community__brand"

    community = models.ForeignKey(Community, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    status = models.CharField(
        max_length=10, choices=MembershipStatus.choices, default=MembershipStatus.ACTIVE
    )
    joined_at = models.DateTimeField(auto_now_add=True)
    # The sum of the member's ledger entries here, kept by communities.honour with F().
    points = models.IntegerField(default=0, editable=False)

    class Meta:
        ordering = ["joined_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["community", "user"], name="communities_membership_once"
            )
        ]
        indexes = [models.Index(fields=["community", "-points"], name="communities_top_members")]

    def __str__(self) -> str:
        return f"{self.user} in {self.community} ({self.role}, {self.status})"

    @property
    def is_active(self) -> bool:
        return self.status == MembershipStatus.ACTIVE

    @property
    def can_moderate(self) -> bool:
        return self.is_active and self.role in (Role.OWNER, Role.MODERATOR)

    @property
    def level(self) -> int:
        from communities.honour import level_for

        return level_for(self.points)


class PostKind(models.TextChoices):
    POST = "post", "Post"
    ANNOUNCEMENT = "announcement", "Announcement"


class Post(models.Model):
    brand_lookup = "community__brand"

    community = models.ForeignKey(Community, on_delete=models.CASCADE, related_name="posts")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="community_posts"
    )
    kind = models.CharField(max_length=12, choices=PostKind.choices, default=PostKind.POST)
    title = models.CharField(max_length=200)
    body = models.TextField(max_length=20_000, help_text="Markdown.")
    body_html = models.TextField(editable=False)
    # Its own storage, outside /media/: served only through the view behind `image_url`.
    image = models.ImageField(
        upload_to="communities/posts/", blank=True, storage=post_image_storage
    )
    is_pinned = models.BooleanField(default=False)
    hidden_at = models.DateTimeField(null=True, blank=True, help_text="Hidden by a moderator.")
    deleted_at = models.DateTimeField(null=True, blank=True, help_text="Deleted by its author.")
    like_count = models.PositiveIntegerField(default=0, editable=False)
    comment_count = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    edited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["community", "-created_at", "-id"],
                name="communities_feed",
                condition=Q(hidden_at__isnull=True, deleted_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("communities:post", kwargs={"slug": self.community.slug, "pk": self.pk})

    @property
    def is_visible(self) -> bool:
        return self.hidden_at is None and self.deleted_at is None

    @property
    def image_url(self) -> str:
        """The permission-checked address of the image (communities.media)."""
        return reverse(
            "communities:post_image", kwargs={"slug": self.community.slug, "pk": self.pk}
        )


class Comment(models.Model):
    brand_lookup = "post__community__brand"

    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="community_comments"
    )
    # One level of replies: a reply's parent is always a top-level comment.
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="replies"
    )
    body = models.TextField(max_length=5_000)
    body_html = models.TextField(editable=False)
    hidden_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"Comment {self.pk} on {self.post_id}"


class Reaction(StandingRow):
    """A like. One per member per post."""

    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="reactions")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="community_reactions"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["post", "user"], name="communities_like_once")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} likes {self.post_id}"


class PointsEntry(models.Model):
    """The append-only points ledger. `source` names what earned the points ("post:12",
    "like:12:7"); it is unique, so the same deed never pays twice."""

    brand_lookup = "community__brand"

    community = models.ForeignKey(Community, on_delete=models.CASCADE, related_name="points")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="community_points"
    )
    points = models.IntegerField()
    reason = models.CharField(max_length=120)
    source = models.CharField(max_length=120, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["community", "created_at"], name="communities_points_time")]

    def __str__(self) -> str:
        return f"{self.points:+d} for {self.user_id}: {self.reason}"


class MemberBadge(StandingRow):
    """A badge a member earned, kept as a row (granted once, by unique constraint)."""

    brand_lookup = "community__brand"

    community = models.ForeignKey(Community, on_delete=models.CASCADE, related_name="badges")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="community_badges"
    )
    code = models.CharField(max_length=30)
    granted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["granted_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["community", "user", "code"], name="communities_badge_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.code} for {self.user_id} in {self.community_id}"


class Poll(models.Model):
    """A co-creation poll attached to a post: "which colour for the next phone?"."""

    brand_lookup = "post__community__brand"

    post = models.OneToOneField(Post, on_delete=models.CASCADE, related_name="poll")
    question = models.CharField(max_length=200)
    multiple = models.BooleanField(default=False, help_text="Members may pick several options.")
    closes_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.question

    @property
    def is_closed(self) -> bool:
        from django.utils import timezone

        return self.closes_at is not None and self.closes_at <= timezone.now()


class PollOption(models.Model):
    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, related_name="options")
    text = models.CharField(max_length=120)
    position = models.PositiveSmallIntegerField(default=0)
    vote_count = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.text


class PollVote(models.Model):
    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, related_name="votes")
    option = models.ForeignKey(PollOption, on_delete=models.CASCADE, related_name="votes")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="poll_votes"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["option", "user"], name="communities_vote_option_once")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} voted {self.option_id}"


class Report(models.Model):
    """A member's report of a post or a comment, for the community's moderators."""

    brand_lookup = "community__brand"

    community = models.ForeignKey(Community, on_delete=models.CASCADE, related_name="reports")
    post = models.ForeignKey(
        Post, on_delete=models.CASCADE, null=True, blank=True, related_name="reports"
    )
    comment = models.ForeignKey(
        Comment, on_delete=models.CASCADE, null=True, blank=True, related_name="reports"
    )
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="community_reports"
    )
    reason = models.CharField(max_length=300)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=20, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(post__isnull=False, comment__isnull=True)
                | Q(post__isnull=True, comment__isnull=False),
                name="communities_report_one_target",
            ),
            models.UniqueConstraint(
                fields=["post", "reporter"],
                name="communities_report_post_once",
                condition=Q(post__isnull=False),
            ),
            models.UniqueConstraint(
                fields=["comment", "reporter"],
                name="communities_report_comment_once",
                condition=Q(comment__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"Report by {self.reporter_id}: {self.reason[:40]}"


class IdeaStatus(models.TextChoices):
    OPEN = "open", "Open"
    UNDER_REVIEW = "under_review", "Under review"
    PLANNED = "planned", "Planned"
    SHIPPED = "shipped", "Shipped"
    DECLINED = "declined", "Declined"


class Idea(models.Model):
    """A product idea from a member; others upvote; the owners answer publicly."""

    brand_lookup = "community__brand"

    community = models.ForeignKey(Community, on_delete=models.CASCADE, related_name="ideas")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="community_ideas"
    )
    title = models.CharField(max_length=160)
    description = models.TextField(max_length=5_000)
    status = models.CharField(max_length=14, choices=IdeaStatus.choices, default=IdeaStatus.OPEN)
    response = models.TextField(blank=True, help_text="The brand's public answer.")
    vote_count = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-vote_count", "-created_at"]

    def __str__(self) -> str:
        return self.title


class IdeaVote(models.Model):
    idea = models.ForeignKey(Idea, on_delete=models.CASCADE, related_name="votes")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="idea_votes"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["idea", "user"], name="communities_idea_vote_once")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} +1 {self.idea_id}"


class Invite(models.Model):
    """An invite link for an invite-only (or private) community: signed token, expiry and a
    number of uses."""

    brand_lookup = "community__brand"

    community = models.ForeignKey(Community, on_delete=models.CASCADE, related_name="invites")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    token = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    max_uses = models.PositiveIntegerField(default=10)
    uses = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(uses__lte=models.F("max_uses")),
                name="communities_invite_uses_within_max",
            )
        ]

    def __str__(self) -> str:
        return f"Invite to {self.community} ({self.uses}/{self.max_uses})"
