"""Issue 13 in communities: who may act on whom, the last owner, post images behind a
permission check, and tampered input that must be refused with a message (never a 500)."""

import importlib
import io
import re
import threading
from pathlib import Path

import pytest
from django.apps import apps
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.urls import reverse
from PIL import Image

from communities.ideas import idea_set_status
from communities.invites import invite_accept, invite_for
from communities.media import post_image_storage
from communities.models import (
    Comment,
    Community,
    Idea,
    Membership,
    MembershipStatus,
    Poll,
    PollVote,
    Post,
    Report,
    Role,
    Visibility,
)
from communities.moderation import report_create
from communities.polls import poll_create
from communities.services import (
    comment_create,
    community_leave,
    membership_set_role,
    post_create,
)
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


def _membership(community, user) -> Membership:
    return Membership.objects.get(community=community, user=user)


def _png(color="orange") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(out, format="PNG")
    return out.getvalue()


def _ban(client, community, target):
    return client.post(reverse("communities:ban", args=[community.slug, target.pk]), follow=True)


# --- Who may act on whom ------------------------------------------------------------------------


def test_a_moderator_cannot_ban_the_only_owner_over_http(client):
    community = _community()
    owner, moderator = _member(community, Role.OWNER), _member(community, Role.MODERATOR)
    client.force_login(moderator)
    response = _ban(client, community, owner)
    assert "only on members below your role" in response.content.decode()
    owner_row = _membership(community, owner)
    assert (owner_row.role, owner_row.status) == (Role.OWNER, MembershipStatus.ACTIVE)


def test_bans_follow_the_roles(client):
    community = _community()
    owner, other_owner = _member(community, Role.OWNER), _member(community, Role.OWNER)
    moderator, other_moderator = (
        _member(community, Role.MODERATOR),
        _member(community, Role.MODERATOR),
    )
    fan = _member(community)
    client.force_login(moderator)
    _ban(client, community, other_moderator)  # same role: refused
    assert _membership(community, other_moderator).status == MembershipStatus.ACTIVE
    _ban(client, community, fan)  # below: done
    assert _membership(community, fan).status == MembershipStatus.BANNED
    client.force_login(owner)
    _ban(client, community, other_owner)  # owners do not ban owners
    assert _membership(community, other_owner).role == Role.OWNER
    _ban(client, community, other_moderator)
    row = _membership(community, other_moderator)
    assert (row.role, row.status) == (Role.MEMBER, MembershipStatus.BANNED)
    community.refresh_from_db()
    assert community.member_count == 3  # two owners and one moderator


def test_a_moderator_hides_only_what_members_below_wrote(client):
    community = _community()
    owner, moderator, fan = (
        _member(community, Role.OWNER),
        _member(community, Role.MODERATOR),
        _member(community),
    )
    owners_post = post_create(community=community, author=owner, title="Roadmap", body="x")
    fans_post = post_create(community=community, author=fan, title="Spam", body="x")
    owners_comment = comment_create(post=fans_post, author=owner, body="Please stop")
    client.force_login(moderator)
    client.post(reverse("communities:post_delete", args=[community.slug, owners_post.pk]))
    client.post(
        reverse(
            "communities:comment_delete", args=[community.slug, fans_post.pk, owners_comment.pk]
        )
    )
    owners_post.refresh_from_db()
    owners_comment.refresh_from_db()
    assert owners_post.is_visible and owners_comment.hidden_at is None
    client.post(reverse("communities:post_delete", args=[community.slug, fans_post.pk]))
    fans_post.refresh_from_db()
    assert fans_post.hidden_at is not None


def test_a_moderator_cannot_hide_an_owners_post_from_the_queue(client):
    community = _community()
    owner, moderator, fan = (
        _member(community, Role.OWNER),
        _member(community, Role.MODERATOR),
        _member(community),
    )
    post = post_create(community=community, author=owner, title="Roadmap", body="x")
    report = report_create(reporter=fan, reason="I dislike it", post=post)
    client.force_login(moderator)
    response = client.post(
        reverse("communities:moderation", args=[community.slug]),
        {"report": report.pk, "decision": "hide"},
        follow=True,
    )
    assert "below your role" in response.content.decode()
    post.refresh_from_db()
    report.refresh_from_db()
    assert post.is_visible and report.resolved_at is None


def test_the_last_owner_cannot_leave_or_be_demoted():
    community = _community()
    owner, moderator = _member(community, Role.OWNER), _member(community, Role.MODERATOR)
    with pytest.raises(Exception, match="only owner|needs an active owner"):
        community_leave(community=community, user=owner)
    with pytest.raises(Exception, match="own role"):
        membership_set_role(membership=_membership(community, owner), actor=owner, role=Role.MEMBER)
    with pytest.raises(Exception, match="below your role"):
        membership_set_role(
            membership=_membership(community, owner), actor=moderator, role=Role.MEMBER
        )
    membership_set_role(membership=_membership(community, moderator), actor=owner, role=Role.OWNER)
    community_leave(community=community, user=owner)  # now someone else owns it
    assert list(
        Membership.objects.filter(community=community, role=Role.OWNER).values_list(
            "user", flat=True
        )
    ) == [moderator.pk]


def _inline_post(admin_client, community, rows):
    """The community change form as the admin sends it, with the membership rows edited."""
    data = {
        "brand": community.brand_id,
        "kind": community.kind,
        "name": community.name,
        "slug": community.slug,
        "description": "",
        "rules": "",
        "visibility": community.visibility,
        "memberships-TOTAL_FORMS": len(rows),
        "memberships-INITIAL_FORMS": len(rows),
        "memberships-MIN_NUM_FORMS": 0,
        "memberships-MAX_NUM_FORMS": 1000,
    }
    for n, (membership, role, status, delete) in enumerate(rows):
        data |= {
            f"memberships-{n}-id": membership.pk,
            f"memberships-{n}-community": community.pk,
            f"memberships-{n}-role": role,
            f"memberships-{n}-status": status,
        }
        if delete:
            data[f"memberships-{n}-DELETE"] = "on"
    return admin_client.post(
        reverse("admin:communities_community_change", args=[community.pk]), data
    )


def test_the_admin_keeps_the_last_owner(admin_client):
    community = _community()
    owner, fan = _member(community, Role.OWNER), _member(community)
    owner_row, fan_row = _membership(community, owner), _membership(community, fan)
    active = MembershipStatus.ACTIVE
    for rows in (
        [(owner_row, Role.MEMBER, active, False), (fan_row, Role.MEMBER, active, False)],
        [(owner_row, Role.OWNER, MembershipStatus.BANNED, False), (fan_row, "member", active, 0)],
        [(owner_row, Role.OWNER, active, True), (fan_row, Role.MEMBER, active, False)],
    ):
        response = _inline_post(admin_client, community, rows)
        assert response.status_code == 200  # the form again, with the error
        assert "needs an active owner" in response.content.decode()
        owner_row.refresh_from_db()
        assert (owner_row.role, owner_row.status) == (Role.OWNER, active)
    # Promote the fan and demote the owner in one save: allowed, through the services.
    response = _inline_post(
        admin_client,
        community,
        [(owner_row, Role.MEMBER, active, False), (fan_row, Role.OWNER, active, False)],
    )
    assert response.status_code == 302
    owner_row.refresh_from_db()
    fan_row.refresh_from_db()
    assert (owner_row.role, fan_row.role) == (Role.MEMBER, Role.OWNER)


@pytest.mark.django_db(transaction=True)
def test_two_owners_leaving_at_once_leave_one_owner():
    community = _community()
    owners = [_member(community, Role.OWNER), _member(community, Role.OWNER)]
    barrier, errors = threading.Barrier(2), []

    def leave(user):
        try:
            barrier.wait()
            community_leave(community=community, user=user)
        except Exception as exc:  # the one refused
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=leave, args=[user]) for user in owners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(errors) == 1 and "only owner" in str(errors[0])
    assert Membership.objects.filter(community=community, role=Role.OWNER).count() == 1


# --- Post images ----------------------------------------------------------------------------


def _post_with_image(client, community, author) -> Post:
    client.force_login(author)
    client.post(
        reverse("communities:post_new", args=[community.slug]),
        {"title": "My desk", "body": "Look", "image": SimpleUploadedFile("d.png", _png())},
    )
    client.logout()
    return Post.objects.get(title="My desk")


def _image(client, post):
    return client.get(reverse("communities:post_image", args=[post.community.slug, post.pk]))


def test_private_post_images_only_for_members_who_may_read_the_post(client):
    community = _community(Visibility.PRIVATE)
    owner, fan, troll = (
        _member(community, Role.OWNER),
        _member(community),
        _member(community),
    )
    post = _post_with_image(client, community, fan)
    client.force_login(fan)
    page = client.get(post.get_absolute_url()).content.decode()
    feed = client.get(community.get_absolute_url()).content.decode()
    assert post.image_url in page and post.image_url in feed
    assert "/media/" not in page and "/media/" not in feed
    response = _image(client, post)
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert b"".join(response.streaming_content)[:3] == b"\xff\xd8\xff"  # the JPEG we stored
    assert response["Cache-Control"] == "private, no-store"

    client.logout()
    assert _image(client, post).status_code == 404  # a visitor with the link
    client.force_login(UserFactory())
    assert _image(client, post).status_code == 404  # a signed-in outsider
    client.force_login(owner)
    _ban(client, community, troll)
    client.force_login(troll)
    assert _image(client, post).status_code == 404  # banned
    client.force_login(owner)
    client.post(reverse("communities:post_delete", args=[community.slug, post.pk]))  # hides
    client.force_login(fan)
    assert _image(client, post).status_code == 404  # hidden: not even for members


def test_a_deleted_post_image_is_gone_and_public_images_are_cacheable(client):
    community = _community(Visibility.PUBLIC)
    fan = _member(community)
    post = _post_with_image(client, community, fan)
    response = _image(client, post)  # a visitor
    assert response.status_code == 200 and response["Cache-Control"].startswith("public")
    client.force_login(fan)
    client.post(reverse("communities:post_delete", args=[community.slug, post.pk]))
    assert _image(client, post).status_code == 404


def test_production_hands_the_file_to_the_web_server(client, settings):
    settings.COMMUNITY_MEDIA_DELIVERY = "x-accel-redirect"
    community = _community(Visibility.INVITE_ONLY)
    fan = _member(community)
    post = _post_with_image(client, community, fan)
    client.force_login(fan)
    response = _image(client, post)
    assert response.status_code == 200 and response.content == b""
    assert response["X-Accel-Redirect"] == f"/_post_media/{post.image.name}"
    client.logout()
    assert _image(client, post).status_code == 404


def test_post_images_live_outside_media_and_old_files_move_there(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    }
    from django.core.files.storage import storages

    storage = post_image_storage()
    assert isinstance(storage, FileSystemStorage)
    assert not Path(storage.location).is_relative_to(tmp_path / "media")
    # A file stored before, where /media/ served it: the migration moves it.
    community = _community()
    author = _member(community)
    name = storages["default"].save("communities/posts/abc123.jpg", ContentFile(b"jpeg"))
    Post.objects.create(
        community=community, author=author, title="Old", body="x", body_html="x", image=name
    )
    migration = importlib.import_module("communities.migrations.0005_post_image_private_storage")
    migration.move_post_images(apps, None)
    assert not (tmp_path / "media" / name).exists()  # no longer under /media/
    assert storage.exists(name) and storage.open(name).read() == b"jpeg"
    migration.move_post_images(apps, None)  # a second run changes nothing
    assert storage.exists(name)


# --- No 500s from input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "cursor",
    [
        "2026-02-30T10:00:00|1",
        "2026-01-01T10:00:00|²",
        "0001-01-01T00:00:00+05:00|1",
        "2026-01-01T10:00:00|99999999999999999999999",
        "garbage",
        "\x00",
    ],
)
def test_a_bad_feed_cursor_is_a_400_with_a_message(client, cursor):
    community = _community()
    post_create(community=community, author=_member(community), title="Hello", body="x")
    for who in (None, _member(community)):
        if who:
            client.force_login(who)
        response = client.get(community.get_absolute_url(), {"after": cursor})
        assert response.status_code == 400
        # Ours, or the site-wide refusal of NUL bytes in front of it.
        assert re.search("start from the first page|NUL byte", response.content.decode())


def test_a_naive_cursor_still_pages(client):
    community = _community()
    post_create(community=community, author=_member(community), title="Hello", body="x")
    response = client.get(community.get_absolute_url(), {"after": "2999-01-01T00:00:00|1"})
    assert response.status_code == 200 and "Hello" in response.content.decode()


def _poll_post(community, author):
    post = post_create(community=community, author=author, title="Colour?", body="x")
    poll_create(post=post, question="Which?", options=["Lime", "Sunset"])
    return post


@pytest.mark.parametrize("option", ["²", "abc", "1.5", "99999999999999999999", ""])
def test_a_tampered_poll_vote_is_refused(client, option):
    community = _community()
    fan = _member(community)
    post = _poll_post(community, fan)
    client.force_login(fan)
    response = client.post(
        reverse("communities:vote", args=[community.slug, post.pk]), {"option": option}
    )
    assert response.status_code == 400
    assert "Choose" in response.content.decode()
    assert not PollVote.objects.exists()
    assert (
        client.post(  # the real options still work
            reverse("communities:vote", args=[community.slug, post.pk]),
            {"option": Poll.objects.get().options.first().pk},
        ).status_code
        == 302
    )
    assert PollVote.objects.count() == 1


@pytest.mark.parametrize("comment", ["abc", "1.5", "²", "-1", "99999999999999999999"])
def test_a_tampered_report_is_refused(client, comment):
    community = _community()
    fan = _member(community)
    post = post_create(community=community, author=fan, title="Hi", body="x")
    client.force_login(fan)
    response = client.post(
        reverse("communities:report", args=[community.slug, post.pk]),
        {"reason": "spam", "comment": comment},
    )
    assert response.status_code == 400
    assert "not a comment of this post" in response.content.decode()
    assert not Report.objects.exists()


@pytest.mark.parametrize("report", ["abc", "1.5", "", "99999999999999999999"])
def test_a_tampered_moderation_decision_is_refused(client, report):
    community = _community()
    owner, fan = _member(community, Role.OWNER), _member(community)
    post = post_create(community=community, author=fan, title="Hi", body="x")
    real = report_create(reporter=owner, reason="spam", post=post)
    client.force_login(owner)
    response = client.post(
        reverse("communities:moderation", args=[community.slug]),
        {"report": report, "decision": "hide"},
    )
    assert response.status_code == 400
    assert re.search("number|required|less than", response.content.decode())
    post.refresh_from_db()
    real.refresh_from_db()
    assert post.is_visible and real.resolved_at is None


def test_a_nul_invite_token_is_refused(client):
    community = _community(Visibility.INVITE_ONLY)
    user = UserFactory()
    client.force_login(user)
    for url in ("/c/invite/%00/", "/c/invite/a%00b/"):
        assert client.get(url).status_code in (400, 404)
        assert client.post(url).status_code in (400, 404)
    # Below any middleware: the lookups themselves never send NUL to PostgreSQL.
    assert invite_for(token="\x00") is None
    with pytest.raises(PermissionDenied, match="expired or does not exist"):
        invite_accept(token="a\x00b", user=user)
    assert not Membership.objects.filter(community=community).exists()


def test_a_nul_in_an_ideas_answer_is_refused(client):
    community = _community()
    owner = _member(community, Role.OWNER)
    idea = Idea.objects.create(community=community, author=owner, title="Lime", description="x")
    client.force_login(owner)
    url = reverse("communities:idea_status", args=[community.slug, idea.pk])
    response = client.post(url, {"status": "planned", "response": "Soon\x00"})
    assert response.status_code == 400
    assert re.search("Null characters|NUL byte", response.content.decode())
    with pytest.raises(ValidationError, match="not allowed"):
        idea_set_status(idea=idea, moderator=owner, status="planned", response="Soon\x00")
    response = client.post(url, {"status": "nonsense", "response": "Soon"})
    assert response.status_code == 400 and "valid choice" in response.content.decode()
    idea.refresh_from_db()
    assert (idea.status, idea.response) == ("open", "")
    client.post(url, {"status": "planned", "response": "Soon"})
    idea.refresh_from_db()
    assert (idea.status, idea.response) == ("planned", "Soon")


def test_a_reply_to_a_missing_comment_is_refused(client):
    community = _community()
    fan = _member(community)
    post = post_create(community=community, author=fan, title="Hi", body="x")
    gone = comment_create(post=post, author=fan, body="First")
    client.force_login(fan)
    client.post(reverse("communities:comment_delete", args=[community.slug, post.pk, gone.pk]))
    for parent in (gone.pk + 1000, gone.pk):  # never existed; deleted
        response = client.post(post.get_absolute_url(), {"body": "Reply", "parent": parent})
        assert response.status_code == 400
        assert "no longer there" in response.content.decode()
    for parent in ("abc", "1.5", "99999999999999999999"):
        assert (
            client.post(post.get_absolute_url(), {"body": "Reply", "parent": parent}).status_code
            == 400
        )
    assert Comment.objects.filter(body="Reply").count() == 0


def test_deleting_a_comment_twice_counts_once(client):
    community = _community()
    fan, owner = _member(community), _member(community, Role.OWNER)
    post = post_create(community=community, author=fan, title="Hi", body="x")
    keep = comment_create(post=post, author=owner, body="Keep")
    gone = comment_create(post=post, author=fan, body="Oops")
    url = reverse("communities:comment_delete", args=[community.slug, post.pk, gone.pk])
    client.force_login(fan)
    for _ in range(3):
        client.post(url)
    client.force_login(owner)
    client.post(url)  # a moderator's hide of what is already gone
    post.refresh_from_db()
    assert post.comment_count == 1
    assert Comment.objects.get(pk=keep.pk).hidden_at is None


@pytest.mark.django_db(transaction=True)
def test_concurrent_deletes_of_one_comment_count_once():
    from communities.services import comment_delete

    community = _community()
    fan = _member(community)
    post = post_create(community=community, author=fan, title="Hi", body="x")
    comment_create(post=post, author=fan, body="One")
    gone = comment_create(post=post, author=fan, body="Two")
    barrier = threading.Barrier(6)

    def delete():
        try:
            barrier.wait()
            comment_delete(comment=Comment.objects.get(pk=gone.pk), user=fan)
        finally:
            connection.close()

    threads = [threading.Thread(target=delete) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    post.refresh_from_db()
    assert post.comment_count == 1


def test_only_accepted_posts_count_against_the_limit(client, settings):
    settings.COMMUNITY_RATE_LIMITS = {"post": (2, 2), "comment": (1, 1)}
    community = _community()
    fan = _member(community)
    client.force_login(fan)
    url = reverse("communities:post_new", args=[community.slug])
    refused = [
        {"title": "Bad image", "body": "x", "image": SimpleUploadedFile("x.png", b"<html>")},
        {"title": "Poll", "body": "x", "poll_question": "Q?", "poll_options": "A\na"},
        {"title": "\u202e\n", "body": "x"},  # nothing left of the title
    ]
    for data in refused * 2:
        assert client.post(url, data).status_code == 400
    assert not Post.objects.exists()
    for n in range(2):
        assert client.post(url, {"title": f"Fine {n}", "body": "x"}).status_code == 302
    response = client.post(url, {"title": "Third", "body": "x"})
    assert response.status_code == 400 and "Slow down" in response.content.decode()
    assert Post.objects.count() == 2
    post = Post.objects.first()
    with pytest.raises(Exception, match="Write something"):
        comment_create(post=post, author=fan, body="   ")
    comment_create(post=post, author=fan, body="Counted")  # the refused one did not count


def test_a_title_with_a_newline_is_stored_as_one_line(client):
    community = _community()
    fan = _member(community)
    client.force_login(fan)
    client.post(
        reverse("communities:post_new", args=[community.slug]),
        {"title": "Hello\r\nBcc: victim@example.com\u202e", "body": "x"},
    )
    assert Post.objects.get().title == "Hello Bcc: victim@example.com"


def test_reply_emails_are_sent_for_a_post_with_an_old_newline_title(
    django_capture_on_commit_callbacks,
):
    community = _community()
    author, replier = _member(community), _member(community)
    post = post_create(community=community, author=author, title="Hi", body="x")
    Post.objects.filter(pk=post.pk).update(title="Old\ntitle\r\nBcc: x@example.com")
    post.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        comment_create(post=post, author=replier, body="Nice")
    assert len(mail.outbox) == 1
    subject = mail.outbox[0].subject
    assert "\n" not in subject and "\r" not in subject
    assert "Old title Bcc: x@example.com" in subject
    assert mail.outbox[0].to == [author.email]


def test_a_moderator_cannot_ban_fanhub_staff(client):
    """Found by a hostile tester: non-members rank 0, so a moderator banned the superuser."""
    from communities.models import Community, Membership, MembershipStatus, Role
    from tests.factories import UserFactory

    community = Community.objects.create(name="Circle", slug="circle", kind="hobby")
    Membership.objects.create(community=community, user=UserFactory(), role=Role.OWNER)
    moderator = UserFactory()
    Membership.objects.create(community=community, user=moderator, role=Role.MODERATOR)
    staff = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(moderator)
    client.post(f"/c/{community.slug}/ban/{staff.pk}/")
    assert not Membership.objects.filter(
        community=community, user=staff, status=MembershipStatus.BANNED
    ).exists()


def test_a_mention_added_by_an_edit_notifies_only_the_newly_mentioned():
    """Found by a hostile tester: mentions added by editing a post notified nobody."""
    from communities.models import Community, Membership, Role
    from communities.services import post_create, post_update
    from notifications.models import Notification
    from tests.factories import UserFactory

    community = Community.objects.create(name="Circle", slug="circle-m", kind="hobby")
    author, ada, omar = UserFactory(), UserFactory(handle="ada"), UserFactory(handle="omar")
    for member in (author, ada, omar):
        Membership.objects.create(community=community, user=member, role=Role.MEMBER)
    post = post_create(community=community, author=author, title="Desk", body="Hi @ada")
    post_update(post=post, editor=author, title="Desk", body="Hi @ada and @omar")
    assert Notification.objects.filter(recipient=ada).count() == 1  # not told twice
    assert Notification.objects.filter(recipient=omar).count() == 1


def test_a_moderator_cannot_pin_or_unpin_an_owners_post():
    from django.core.exceptions import PermissionDenied

    from communities.models import Community, Membership, Role
    from communities.services import post_create, post_set_pinned
    from tests.factories import UserFactory

    community = Community.objects.create(name="Circle", slug="circle-p", kind="hobby")
    owner, moderator = UserFactory(), UserFactory()
    Membership.objects.create(community=community, user=owner, role=Role.OWNER)
    Membership.objects.create(community=community, user=moderator, role=Role.MODERATOR)
    post = post_create(community=community, author=owner, title="Rules", body="Be kind")
    with pytest.raises(PermissionDenied):
        post_set_pinned(post=post, moderator=moderator, pinned=True)
    post_set_pinned(post=post, moderator=owner, pinned=True)  # the owner may
    mine = post_create(community=community, author=moderator, title="Tips", body="x")
    post_set_pinned(post=mine, moderator=moderator, pinned=True)  # and a moderator their own


def test_a_banned_member_leaves_the_profile_and_the_monthly_board_of_that_community(
    django_capture_on_commit_callbacks,
):
    """Found by a hostile tester: after a ban the profile still listed the member's posts
    there, and the month's leaderboard still showed them."""

    from communities.honour import leaderboard
    from communities.models import Community, Membership, Role
    from communities.profiles import member_profile
    from communities.services import member_ban, post_create
    from tests.factories import UserFactory

    community = Community.objects.create(name="Open", slug="open-b", kind="hobby")
    owner, omar, viewer = UserFactory(), UserFactory(handle="omar"), UserFactory()
    Membership.objects.create(community=community, user=owner, role=Role.OWNER)
    for member in (omar, viewer):
        Membership.objects.create(community=community, user=member, role=Role.MEMBER)
    post_create(community=community, author=omar, title="My desk", body="x")
    assert [p.title for p in member_profile(handle="omar", viewer=viewer).posts] == ["My desk"]
    leaderboard(community=community)  # cached now
    with django_capture_on_commit_callbacks(execute=True):
        member_ban(community=community, user=omar, moderator=owner)
    assert member_profile(handle="omar", viewer=viewer).posts == []
    board = leaderboard(community=community)
    assert all(row["name"] != omar.public_name for rows in board.values() for row in rows)
