import io
import threading

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from PIL import Image

from communities.models import (
    Community,
    Membership,
    MembershipStatus,
    Post,
    Role,
    Visibility,
)
from communities.services import (
    comment_create,
    community_join,
    member_ban,
    post_create,
    post_like_toggle,
)
from notifications.models import Notification
from tests.factories import BrandFactory, UserFactory

pytestmark = pytest.mark.django_db


def _community(visibility=Visibility.PUBLIC, slug="nimbus-fans") -> Community:
    return Community.objects.create(
        name="Nimbus Fans", slug=slug, kind="brand", brand=BrandFactory(), visibility=visibility
    )


def _member(community, role=Role.MEMBER, user=None):
    user = user or UserFactory()
    Membership.objects.create(community=community, user=user, role=role)
    return user


def test_joining_a_public_community(client):
    community = _community()
    fan = UserFactory()
    client.force_login(fan)
    client.post(reverse("communities:join", args=[community.slug]))
    community.refresh_from_db()
    assert Membership.objects.get(user=fan).status == MembershipStatus.ACTIVE
    assert community.member_count == 1
    client.post(reverse("communities:join", args=[community.slug]))  # a double submit
    assert Membership.objects.filter(user=fan).count() == 1


def test_private_community_needs_approval_and_hides_its_posts(client):
    community = _community(Visibility.PRIVATE)
    moderator = _member(community, Role.OWNER)
    post = post_create(
        community=community, author=moderator, title="Secret roadmap", body="Next phone"
    )
    outsider = UserFactory()
    client.force_login(outsider)
    page = client.get(community.get_absolute_url()).content.decode()
    assert "Secret roadmap" not in page
    assert client.get(post.get_absolute_url()).status_code == 404  # guessing the id
    client.post(reverse("communities:join", args=[community.slug]))
    request = Membership.objects.get(user=outsider)
    assert request.status == MembershipStatus.PENDING
    assert client.get(post.get_absolute_url()).status_code == 404
    client.force_login(moderator)
    client.post(
        reverse("communities:decide", args=[community.slug, request.pk]), {"decision": "approve"}
    )
    client.force_login(outsider)
    assert client.get(post.get_absolute_url()).status_code == 200
    assert Notification.objects.filter(recipient=outsider, kind="join_approved").exists()


def test_invite_only_refuses_a_plain_join():
    community = _community(Visibility.INVITE_ONLY)
    with pytest.raises(Exception, match="invite"):
        community_join(community=community, user=UserFactory())
    assert not Membership.objects.exists()


def test_only_members_post_and_only_moderators_announce():
    community = _community()
    outsider, member = UserFactory(), _member(community)
    with pytest.raises(Exception, match="Only members"):
        post_create(community=community, author=outsider, title="Hi", body="x")
    with pytest.raises(Exception, match="owners and moderators"):
        post_create(community=community, author=member, title="Hi", body="x", announcement=True)
    assert not Post.objects.exists()


def test_a_banned_member_cannot_post_or_rejoin(client):
    community = _community()
    owner, troll = _member(community, Role.OWNER), _member(community)
    member_ban(community=community, user=troll, moderator=owner)
    with pytest.raises(Exception):
        post_create(community=community, author=troll, title="spam", body="spam")
    client.force_login(troll)
    client.post(reverse("communities:join", args=[community.slug]))
    assert Membership.objects.get(user=troll).status == MembershipStatus.BANNED
    client.post(reverse("communities:leave", args=[community.slug]))  # leaving lifts nothing
    assert Membership.objects.get(user=troll).status == MembershipStatus.BANNED


def test_script_in_a_post_comes_out_inert(client):
    community = _community()
    author = _member(community)
    post = post_create(
        community=community,
        author=author,
        title="<b>t</b>",
        body="Hello <script>alert(1)</script> <img src=x onerror=alert(1)>",
    )
    comment_create(post=post, author=author, body="<script>alert(2)</script>")
    for url in [community.get_absolute_url(), post.get_absolute_url()]:
        html = client.get(url).content.decode()
        assert "<script>alert" not in html and "onerror=alert" not in html


def test_post_with_image_and_a_bad_image(client):
    community = _community()
    author = _member(community)
    client.force_login(author)
    out = io.BytesIO()
    Image.new("RGB", (2400, 1200), "orange").save(out, format="PNG")
    client.post(
        reverse("communities:post_new", args=[community.slug]),
        {
            "title": "My desk",
            "body": "Look",
            "image": SimpleUploadedFile("desk.png", out.getvalue(), "image/png"),
        },
    )
    post = Post.objects.get()
    assert post.image.name.endswith(".jpg")
    response = client.post(
        reverse("communities:post_new", args=[community.slug]),
        {
            "title": "Bad",
            "body": "x",
            "image": SimpleUploadedFile("x.png", b"not an image", "image/png"),
        },
    )
    assert response.status_code == 400 and Post.objects.count() == 1


def test_comments_and_replies_stay_one_level_and_notify(django_capture_on_commit_callbacks):
    community = _community()
    author, replier = _member(community), _member(community)
    post = post_create(community=community, author=author, title="Colours?", body="Vote")
    top = comment_create(post=post, author=replier, body="Sunset")
    reply = comment_create(post=post, author=author, body="Agreed", parent=top)
    nested = comment_create(post=post, author=replier, body="Me too", parent=reply)
    assert reply.parent_id == top.pk and nested.parent_id == top.pk
    post.refresh_from_db()
    assert post.comment_count == 3
    assert Notification.objects.filter(recipient=author, kind="reply").count() == 2
    assert Notification.objects.filter(recipient=replier, kind="reply").count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_likes_are_all_counted():
    community = _community()
    post = post_create(community=community, author=_member(community), title="Like me", body="x")
    fans = [_member(community) for _ in range(10)]
    barrier = threading.Barrier(len(fans))

    def like(fan):
        try:
            barrier.wait()
            post_like_toggle(post=Post.objects.get(pk=post.pk), user=fan)
        finally:
            connection.close()

    threads = [threading.Thread(target=like, args=(fan,)) for fan in fans]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    post.refresh_from_db()
    assert post.like_count == 10 == post.reactions.count()


def test_announcement_notifies_every_member(django_capture_on_commit_callbacks):
    community = _community()
    owner = _member(community, Role.OWNER)
    members = [_member(community) for _ in range(3)]
    with django_capture_on_commit_callbacks(execute=True):
        post_create(
            community=community, author=owner, title="X3 is coming", body="Soon", announcement=True
        )
    assert sorted(
        Notification.objects.filter(kind="announcement").values_list("recipient_id", flat=True)
    ) == sorted(m.pk for m in members)
    assert mail.outbox == []  # announcements are in-app only by default


def test_moderator_hides_and_pins(client):
    community = _community()
    owner, author = _member(community, Role.OWNER), _member(community)
    post = post_create(community=community, author=author, title="Off topic", body="x")
    client.force_login(UserFactory())  # not a member: cannot hide
    client.post(reverse("communities:post_delete", args=[community.slug, post.pk]))
    post.refresh_from_db()
    assert post.is_visible
    client.force_login(owner)
    client.post(reverse("communities:post_pin", args=[community.slug, post.pk]))
    post.refresh_from_db()
    assert post.is_pinned
    client.post(reverse("communities:post_delete", args=[community.slug, post.pk]))
    post.refresh_from_db()
    assert post.hidden_at is not None
    assert "Off topic" not in client.get(community.get_absolute_url()).content.decode()


def test_directory_search_and_kind_filter(client):
    _community(slug="nimbus-fans")
    Community.objects.create(name="Berlin Makers", slug="berlin", kind="region")
    names = [c.name for c in client.get("/c/?kind=region").context["communities"]]
    assert names == ["Berlin Makers"]
    names = [c.name for c in client.get("/c/?q=nimbus").context["communities"]]
    assert names == ["Nimbus Fans"]


def test_feed_query_count_is_flat(client):
    community = _community()
    viewer = _member(community)
    authors = [_member(community) for _ in range(5)]

    def posts(n):
        for i in range(n):
            post = post_create(community=community, author=authors[i % 5], title=f"P{i}", body="x")
            post_like_toggle(post=post, user=viewer)

    client.force_login(viewer)
    posts(5)
    with CaptureQueriesContext(connection) as few:
        assert client.get(community.get_absolute_url()).status_code == 200
    posts(45)
    with CaptureQueriesContext(connection) as many:
        response = client.get(community.get_absolute_url())
    assert len(few) == len(many) <= 12
    cursor = response.context["feed"].next_cursor
    older = client.get(community.get_absolute_url(), {"after": cursor})
    assert len(older.context["feed"].posts) == 20
    assert client.get(community.get_absolute_url(), {"after": "garbage"}).status_code == 404


def test_points_levels_and_badges_are_granted_once(client):
    from communities.honour import level_for
    from communities.models import MemberBadge, PointsEntry

    community = _community()
    author = UserFactory(display_name="Lin")
    community_join(community=community, user=author)
    post = post_create(community=community, author=author, title="Hello", body="x")
    post_create(community=community, author=author, title="Again", body="y")
    fans = [UserFactory() for _ in range(10)]
    for fan in fans:
        community_join(community=community, user=fan)
        post_like_toggle(post=post, user=fan)
    post_like_toggle(post=post, user=fans[0])  # unlike ...
    post_like_toggle(post=post, user=fans[0])  # ... and like again: no second payment
    membership = Membership.objects.get(community=community, user=author)
    ledger = PointsEntry.objects.filter(user=author).aggregate(total=Sum("points"))["total"]
    assert membership.points == 2 * 5 + 10 * 1 == ledger
    assert level_for(membership.points) == 2
    assert sorted(MemberBadge.objects.filter(user=author).values_list("code", flat=True)) == [
        "first_post",
        "founding_member",
        "liked_10",
    ]
    assert Notification.objects.filter(recipient=author, kind="badge").count() == 3

    client.force_login(author)
    page = client.get(community.get_absolute_url()).content.decode()
    assert "Lv2" in page and "10 likes" in page and "First post" in page
    board = client.get(reverse("communities:leaderboard", args=[community.slug]))
    assert board.context["board"]["all_time"][0] == {"name": "Lin", "points": 20, "level": 2}
