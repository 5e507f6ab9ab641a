"""A member's community page is served with no query (communities.standing): their standing
and likes are kept per process under a token that every write to their memberships, badges
or likes retires, so whatever they or others do to it shows on their next request."""

import re

import pytest
from django.db import transaction

from communities.honour import badge_grant, points_award
from communities.models import Membership, MembershipStatus, Role, Visibility
from communities.services import (
    community_leave,
    membership_decide,
    post_create,
    post_like_toggle,
)
from tests.factories import UserFactory
from tests.test_communities import _community, _member, _visitor_feed

pytestmark = pytest.mark.django_db


def _points(html: str) -> int:
    card = html[html.index('class="card honour-card"') :]
    return int(re.search(r"· (\d+) point", card)[1])


def test_anothers_like_on_my_post_shows_in_my_standing_on_my_next_request(
    client, django_capture_on_commit_callbacks
):
    community = _community()
    fan, friend = _member(community), _member(community)
    with django_capture_on_commit_callbacks(execute=True):
        post = post_create(community=community, author=fan, title="Desk setup", body="x")
    client.force_login(fan)
    html, _ = _visitor_feed(client)
    before = _points(html)
    assert "First post" in html
    html, queries = _visitor_feed(client)
    assert queries == 0 and _points(html) == before
    with django_capture_on_commit_callbacks(execute=True):
        post_like_toggle(post=post, user=friend)  # the author earns a point
    html, queries = _visitor_feed(client)
    assert _points(html) == before + 1 and queries > 0
    assert "♥</span> 1\n" in html  # the feed shows the like too


def test_a_badge_or_points_given_elsewhere_show_at_once(client, django_capture_on_commit_callbacks):
    community = _community()
    fan = _member(community)
    client.force_login(fan)
    html, _ = _visitor_feed(client)
    assert "Early bird" not in html and _points(html) == 0
    with django_capture_on_commit_callbacks(execute=True):
        badge_grant(community=community, user_id=fan.pk, code="early_bird")
    assert "Early bird" in _visitor_feed(client)[0]
    with django_capture_on_commit_callbacks(execute=True):
        points_award(community=community, user_id=fan.pk, points=12, reason="x", source="t:1")
    html = _visitor_feed(client)[0]
    assert _points(html) == 12 and "Lv2" in html


def test_a_bulk_change_to_memberships_retires_each_members_standing(
    client, django_capture_on_commit_callbacks
):
    community = _community()
    fan = _member(community)
    client.force_login(fan)
    assert "Join" not in _visitor_feed(client)[0]
    with django_capture_on_commit_callbacks(execute=True):  # as an admin action would
        Membership.objects.filter(community=community).update(role=Role.MODERATOR)
    _, queries = _visitor_feed(client)
    _, again = _visitor_feed(client)
    assert queries > 0 and again > 0  # a moderator's page is rendered for them each time
    with django_capture_on_commit_callbacks(execute=True):
        Membership.objects.filter(community=community).delete()
    html, _ = _visitor_feed(client)
    assert "honour-card" not in html and "Join" in html


def test_leaving_and_a_rolled_back_change(client, django_capture_on_commit_callbacks):
    community = _community()
    fan = _member(community)
    _member(community, Role.OWNER)  # a community keeps its owner
    client.force_login(fan)
    assert _points(_visitor_feed(client)[0]) == 0
    with pytest.raises(RuntimeError), transaction.atomic():
        Membership.objects.filter(user=fan).update(points=99)
        raise RuntimeError  # rolled back: nothing shows, the kept standing stays right
    assert _points(_visitor_feed(client)[0]) == 0
    with django_capture_on_commit_callbacks(execute=True):
        community_leave(community=community, user=fan)
    html, _ = _visitor_feed(client)
    assert "honour-card" not in html and "Join" in html


def test_a_private_communitys_feed_shows_once_a_request_is_approved(
    client, django_capture_on_commit_callbacks
):
    community = _community(visibility=Visibility.PRIVATE)
    owner = _member(community, Role.OWNER)
    with django_capture_on_commit_callbacks(execute=True):
        post_create(community=community, author=owner, title="Members only", body="x")
    fan = UserFactory()
    request = Membership.objects.create(
        community=community, user=fan, status=MembershipStatus.PENDING
    )
    client.force_login(fan)
    assert "Members only" not in _visitor_feed(client)[0]
    assert "Members only" not in _visitor_feed(client)[0]  # from the cache, still not
    with django_capture_on_commit_callbacks(execute=True):
        membership_decide(membership=request, moderator=owner, approve=True)
    html, _ = _visitor_feed(client)
    assert "Members only" in html and "honour-card" in html
