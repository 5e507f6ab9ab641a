"""Who is who: names that cannot pass for a brand, staff or another member, a visible mark on
brand and staff accounts, and sign-in limits that an attacker cannot turn against a member."""

import re

import pytest
from django.apps import apps
from django.core import mail
from django.urls import reverse

from accounts.adapters import request_client_ip
from accounts.models import User
from communities.models import Community, Membership, Role, Visibility
from communities.services import comment_create, post_create
from notifications.models import Notification
from tests.factories import TEST_PASSWORD, BrandFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def nimbus():
    brand = BrandFactory(name="Nimbus Mobile", slug="nimbus")
    operator = UserFactory(display_name="Nimbus Mobile team", is_staff=True)
    brand.operators.add(operator)
    community = Community.objects.create(
        name="Nimbus Fans", slug="nimbus-fans", kind="brand", brand=brand,
        visibility=Visibility.PUBLIC,
    )  # fmt: skip
    Membership.objects.create(community=community, user=operator, role=Role.OWNER)
    return brand, operator, community


def _profile_post(client, name: str):
    return client.post(reverse("accounts:profile"), {"display_name": name})


# --- names --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Nimbus Mobile",
        "nimbus  TEAM",
        "Nimbus Mobile team",
        "NIMBUS-MOBILE official",
        "Nіmbus Mоbile",  # Cyrillic і and о
        "N1mbus M0bile",
        "Ｎｉｍｂｕｓ Ｍｏｂｉｌｅ",  # fullwidth
        "Nimbus\u202e Mobile",
    ],
)
def test_a_fan_cannot_take_a_brand_name(client, nimbus, name):
    fan = UserFactory(display_name="Lin")
    client.force_login(fan)
    response = _profile_post(client, name)
    assert response.status_code == 400
    # ("official" is also a staff word: either refusal says why.)
    assert re.search(
        r"sounds like (the brand Nimbus Mobile|Fanhub staff)", response.content.decode()
    )
    fan.refresh_from_db()
    assert fan.display_name == "Lin"


@pytest.mark.parametrize("name", ["Fanhub", "Fanhub admin", "The Moderator", "ad-min", "Staff"])
def test_a_fan_cannot_pass_for_staff_but_staff_can(client, name):
    fan = UserFactory(display_name="Lin")
    client.force_login(fan)
    response = _profile_post(client, name)
    assert response.status_code == 400
    assert "sounds like Fanhub staff" in response.content.decode()
    staff = UserFactory(is_staff=True)
    client.force_login(staff)
    assert _profile_post(client, name).status_code == 302
    staff.refresh_from_db()
    assert staff.display_name == name


def test_ordinary_names_that_merely_contain_those_letters_are_fine(client, nimbus):
    fan = UserFactory()
    client.force_login(fan)
    for name in ["Badminton fan", "Nimbus fan", "Staffordshire Lin"]:
        assert _profile_post(client, name).status_code == 302, name
        fan.refresh_from_db()
        assert fan.display_name == name


def test_only_the_brands_own_operators_may_use_its_name(client, nimbus):
    _, operator, _ = nimbus
    forge_operator = UserFactory(is_staff=True)
    BrandFactory(name="Forge", slug="forge").operators.add(forge_operator)
    client.force_login(operator)
    assert _profile_post(client, "Nimbus Mobile support").status_code == 302
    client.force_login(forge_operator)
    assert _profile_post(client, "Nimbus Mobile team").status_code == 400
    assert _profile_post(client, "Forge team").status_code == 302


def test_another_members_name_is_refused_whatever_its_case(client):
    UserFactory(display_name="Maya Chen")
    fan = UserFactory(display_name="Omar")
    client.force_login(fan)
    for name in [
        "maya chen",
        "MAYA  CHEN",
        " Maya\tChen ",
        "Maya\u200bChen\u202c".replace("\u200b", " "),
    ]:
        response = _profile_post(client, name)
        assert response.status_code == 400, name
        assert "Another member already uses that name." in response.content.decode()
    fan.refresh_from_db()
    assert fan.display_name == "Omar"
    # Keeping one's own name (or changing its case) is not taking someone else's.
    assert _profile_post(client, "OMAR").status_code == 302


def test_bidi_controls_are_stripped_from_names(client):
    """U+202E reverses what follows: "\u202emaet eliboM submiN" is displayed as
    "Nimbus Mobile team". Stored without it, it reads as what it is."""
    fan = UserFactory()
    client.force_login(fan)
    assert _profile_post(client, "\u202emaet eliboM submiN\u202c").status_code == 302
    fan.refresh_from_db()
    assert fan.display_name == "maet eliboM submiN"
    page = client.get(reverse("accounts:profile")).content.decode()
    assert "\u202e" not in page


def test_the_database_refuses_a_second_name_in_another_case():
    from django.db import IntegrityError, transaction

    UserFactory(display_name="Maya Chen")
    with pytest.raises(IntegrityError), transaction.atomic():
        UserFactory(display_name="MAYA CHEN")
    # Empty names (members who never chose one) do not collide.
    UserFactory(display_name="")
    UserFactory(display_name="")


def test_a_member_without_a_name_never_shows_their_email():
    member = UserFactory(email="secret.person@example.com", display_name="")
    assert member.public_name == f"Member #{member.pk}"
    assert "secret" not in member.public_name


def test_migration_backfill_cleans_imitations_and_duplicates(nimbus):
    from importlib import import_module

    migration = import_module("accounts.migrations.0003_display_name_unique")
    fan = UserFactory()
    other = UserFactory()
    # Names saved before the checks existed (bypassing them, as old rows did).
    User.objects.filter(pk=fan.pk).update(display_name="Nimbus Mobile HQ")
    User.objects.filter(pk=other.pk).update(display_name="\u202eLin")
    migration.names_clean_and_unique(apps, None)
    fan.refresh_from_db()
    other.refresh_from_db()
    _, operator, _ = nimbus
    operator.refresh_from_db()
    assert fan.display_name == ""  # shows as "Member #<id>" until they choose again
    assert other.display_name == "Lin"
    assert operator.display_name == "Nimbus Mobile team"  # the brand's own keeps it


# --- sign-up ------------------------------------------------------------------------------


def _signup(client, django_capture_on_commit_callbacks, **data):
    fields = {"email": "new.fan@example.com", "password1": TEST_PASSWORD}
    fields["password2"] = TEST_PASSWORD
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(reverse("account_signup"), {**fields, **data})


def test_signup_asks_for_a_display_name_and_refuses_imitations(
    client, nimbus, django_capture_on_commit_callbacks
):
    page = client.get(reverse("account_signup")).content.decode()
    assert 'name="display_name"' in page
    response = _signup(client, django_capture_on_commit_callbacks)
    assert response.status_code == 200
    assert not User.objects.filter(email="new.fan@example.com").exists()
    response = _signup(client, django_capture_on_commit_callbacks, display_name="nimbus  TEAM")
    assert "sounds like the brand Nimbus Mobile" in response.content.decode()
    assert not User.objects.filter(email="new.fan@example.com").exists()

    response = _signup(client, django_capture_on_commit_callbacks, display_name=" Kai\u202e ")
    assert response.status_code == 302
    fan = User.objects.get(email="new.fan@example.com")
    assert fan.display_name == "Kai"


def test_the_header_shows_the_name_not_the_email(client):
    fan = UserFactory(email="private.address@example.com", display_name="Kai")
    client.force_login(fan)
    home = client.get(reverse("home")).content.decode()
    assert "Kai" in home
    assert "private.address" not in home.split('class="menu-name"', 1)[1].split("</span>", 1)[0]


# --- the mark -----------------------------------------------------------------------------


def test_the_operators_comment_carries_the_brand_mark_and_a_fans_does_not(client, nimbus):
    _, operator, community = nimbus
    fan = UserFactory(display_name="Lin")
    Membership.objects.create(community=community, user=fan)
    post = post_create(community=community, author=fan, title="Battery life", body="How long?")
    comment_create(post=post, author=operator, body="About two days.")
    comment_create(post=post, author=fan, body="Thanks!")

    html = client.get(reverse("communities:post", args=[community.slug, post.pk])).content.decode()
    operator_html = html.split("About two days.")[0].rsplit('class="comment-author"', 1)[1]
    fan_html = html.split("Thanks!")[0].rsplit('class="comment-author"', 1)[1]
    assert "Nimbus Mobile team</span>" in operator_html
    assert (
        'class="badge badge-brand" title="Speaks for Nimbus Mobile">Brand</span>' in operator_html
    )
    assert "Lin</span>" in fan_html
    assert "Speaks for" not in fan_html and "badge-staff" not in fan_html


def test_an_operator_of_another_brand_is_marked_with_that_brand(client, nimbus):
    _, _, community = nimbus
    forge_operator = UserFactory(display_name="Forge team", is_staff=True)
    BrandFactory(name="Forge", slug="forge").operators.add(forge_operator)
    Membership.objects.create(community=community, user=forge_operator)
    post = post_create(community=community, author=forge_operator, title="Hello", body="x")
    html = client.get(reverse("communities:post", args=[community.slug, post.pk])).content.decode()
    assert 'title="Speaks for Forge">Forge</span>' in html
    assert ">Brand</span>" not in html


def test_the_reply_notification_names_the_real_person(
    client, nimbus, django_capture_on_commit_callbacks
):
    _, operator, community = nimbus
    fan = UserFactory(display_name="Lin")
    Membership.objects.create(community=community, user=fan)
    client.force_login(fan)
    assert _profile_post(client, "Nimbus Mobile team").status_code == 400
    post = post_create(community=community, author=operator, title="Roadmap", body="x")
    with django_capture_on_commit_callbacks(execute=True):
        comment_create(post=post, author=fan, body="When?")
    (notice,) = Notification.objects.filter(recipient=operator, title__contains="replied")
    assert notice.title.startswith("Lin replied")
    assert "Nimbus" not in notice.title.split("replied")[0]


# --- sign-in limits -----------------------------------------------------------------------


def _login(client, email: str, password: str, **extra):
    client.logout()
    response = client.post(
        reverse("account_login"), {"login": email, "password": password}, **extra
    )
    return response, "_auth_user_id" in client.session


def test_failed_logins_for_one_account_lock_neither_others_nor_its_owner_elsewhere(client):
    """The rule: failures count per account and address. Ten wrong passwords for A from one
    address refuse A from that address only (with a way in by mailed code), never B behind
    the same address, and never A from its owner's own address."""
    a, b = UserFactory(), UserFactory()
    shared = {"REMOTE_ADDR": "198.51.100.7"}
    for _ in range(10):
        _login(client, a.email, "wrong", **shared)

    response, signed_in = _login(client, b.email, TEST_PASSWORD, **shared)
    assert signed_in, "B behind the same address signs in"
    response, signed_in = _login(client, a.email, TEST_PASSWORD, **shared)
    assert not signed_in
    assert "Sign in with a code sent to your email" in response.content.decode()
    response, signed_in = _login(client, a.email, TEST_PASSWORD, REMOTE_ADDR="203.0.113.9")
    assert signed_in, "A from its own address signs in"


def test_x_forwarded_for_is_ignored_without_trusted_proxies(client, settings, rf):
    settings.TRUSTED_PROXY_COUNT = 0
    a = UserFactory()
    for n in range(5):
        _login(
            client, a.email, "wrong", REMOTE_ADDR="198.51.100.7", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}"
        )
    response, signed_in = _login(
        client, a.email, TEST_PASSWORD, REMOTE_ADDR="198.51.100.7", HTTP_X_FORWARDED_FOR="10.9.9.9"
    )
    assert not signed_in, "a forged X-Forwarded-For does not make a fresh address"
    assert (
        request_client_ip(rf.get("/", REMOTE_ADDR="198.51.100.7", HTTP_X_FORWARDED_FOR="1.2.3.4"))
        == "198.51.100.7"
    )


def test_behind_trusted_proxies_the_address_is_read_from_the_right(client, settings, rf):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1
    lb = "10.0.0.2"

    def ip(xff):
        return request_client_ip(rf.get("/", REMOTE_ADDR=lb, HTTP_X_FORWARDED_FOR=xff))

    assert ip("203.0.113.5") == "203.0.113.5"
    assert ip("1.2.3.4, 203.0.113.5") == "203.0.113.5"  # the client's own entry proves nothing
    assert ip("not-an-ip") == lb
    settings.TRUSTED_PROXY_COUNT = 2
    assert ip("1.2.3.4, 203.0.113.5, 10.0.0.9") == "203.0.113.5"
    assert ip("203.0.113.5") == "203.0.113.5"  # fewer hops than proxies: no 500

    settings.TRUSTED_PROXY_COUNT = 1
    a = UserFactory()
    for _ in range(5):
        _login(
            client, a.email, "wrong", REMOTE_ADDR=lb, HTTP_X_FORWARDED_FOR="1.1.1.1, 198.51.100.7"
        )
    _, signed_in = _login(
        client, a.email, TEST_PASSWORD, REMOTE_ADDR=lb, HTTP_X_FORWARDED_FOR="198.51.100.7"
    )
    assert not signed_in
    _, signed_in = _login(
        client,
        a.email,
        TEST_PASSWORD,
        REMOTE_ADDR=lb,
        HTTP_X_FORWARDED_FOR="198.51.100.7, 203.0.113.9",
    )
    assert signed_in, "another client behind the same load balancer"


def test_an_account_guessed_from_many_addresses_still_lets_its_owner_in_by_mailed_code(
    client, settings, django_capture_on_commit_callbacks
):
    settings.ACCOUNT_RATE_LIMITS = {
        **settings.ACCOUNT_RATE_LIMITS,
        "login_failed_account": "8/h/key",
    }
    a = UserFactory()
    for n in range(8):
        _login(client, a.email, "wrong", REMOTE_ADDR=f"198.51.100.{n}")
    response, signed_in = _login(client, a.email, TEST_PASSWORD, REMOTE_ADDR="203.0.113.9")
    assert not signed_in, "past the account's ceiling, no password is checked"
    assert "Sign in with a code sent to your email" in response.content.decode()

    client.logout()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("account_request_login_code"), {"email": a.email}, REMOTE_ADDR="203.0.113.9"
        )
    assert response.status_code == 302
    code = re.search(r"^([A-Z0-9]{4}-[A-Z0-9]{4})$", mail.outbox[-1].body, re.MULTILINE).group(1)
    client.post(reverse("account_confirm_login_code"), {"code": code}, REMOTE_ADDR="203.0.113.9")
    assert int(client.session["_auth_user_id"]) == a.pk


def test_a_right_password_does_not_count_as_a_failure(client):
    a = UserFactory()
    for _ in range(4):
        _login(client, a.email, "wrong", REMOTE_ADDR="198.51.100.7")
    for _ in range(3):
        _, signed_in = _login(client, a.email, TEST_PASSWORD, REMOTE_ADDR="198.51.100.7")
        assert signed_in
    _, signed_in = _login(client, a.email, "wrong", REMOTE_ADDR="198.51.100.7")
    _, signed_in = _login(client, a.email, TEST_PASSWORD, REMOTE_ADDR="198.51.100.7")
    assert not signed_in  # the fifth failure is the last one this address gets


@pytest.mark.django_db(transaction=True)
def test_two_members_taking_one_name_at_once_get_one_name_and_one_form_error():
    import threading

    from django.core.exceptions import ValidationError
    from django.db import connection

    from accounts.services import user_update_profile

    first, second = UserFactory(display_name="One"), UserFactory(display_name="Two")
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def take(user):
        try:
            barrier.wait()
            user_update_profile(user=User.objects.get(pk=user.pk), display_name="Kai")
            outcomes.append("saved")
        except ValidationError as exc:
            outcomes.append(" ".join(exc.message_dict["display_name"]))
        finally:
            connection.close()

    threads = [threading.Thread(target=take, args=(u,)) for u in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["Another member already uses that name.", "saved"]
    assert User.objects.filter(display_name__iexact="kai").count() == 1


def test_a_name_taken_by_another_sign_up_in_the_same_moment_is_no_error_page(
    client, django_capture_on_commit_callbacks, monkeypatch
):
    """Both sign-ups passed the form's check; the unique index refuses the second save. That
    account is made without the name and the fan is asked to choose again."""
    import accounts.forms

    UserFactory(display_name="Kai")
    monkeypatch.setattr(accounts.forms, "display_name_check", lambda **kwargs: None)
    response = _signup(
        client, django_capture_on_commit_callbacks, display_name="Kai", email="kai2@fans.example"
    )
    assert response.status_code == 302
    fan = User.objects.get(email="kai2@fans.example")
    assert fan.display_name == ""
    assert User.objects.filter(display_name__iexact="kai").count() == 1


@pytest.mark.parametrize(
    "copy", ["Lin\u200d", "Lin\u034f", "Lin\u3164", "Lin\u2800", "Lin.", "L\u0131n", "LIN "]
)
def test_another_members_name_with_an_invisible_or_look_alike_letter_is_taken(copy):
    """Found by a hostile tester: these all look like "Lin" and were accepted."""
    from django.core.exceptions import ValidationError

    from accounts.names import display_name_check, name_clean

    UserFactory(display_name="Lin")
    with pytest.raises(ValidationError, match="Another member already uses that name"):
        display_name_check(name=name_clean(copy), user=UserFactory())


@pytest.mark.parametrize(
    "name", ["\u039dimbus Mobile team", "N\u0131mbus Mobile", "\u0274imbus Mobile", "Adm\u0131n"]
)
def test_look_alike_capitals_and_dotless_letters_cannot_pass_for_a_brand_or_staff(name):
    from django.core.exceptions import ValidationError

    from accounts.names import display_name_check

    BrandFactory(name="Nimbus Mobile", slug="nimbus-mobile")
    with pytest.raises(ValidationError, match="sounds like"):
        display_name_check(name=name, user=UserFactory())


@pytest.mark.parametrize("name", ["Member #5.", "\u039cember #5", "A former member"])
def test_the_names_the_site_shows_for_nameless_or_deleted_members_are_reserved(name):
    from django.core.exceptions import ValidationError

    from accounts.names import display_name_check

    with pytest.raises(ValidationError, match="reserved"):
        display_name_check(name=name, user=UserFactory())


def test_membership_guru_is_still_a_name():
    from accounts.names import display_name_check

    display_name_check(name="Membership guru", user=UserFactory())  # no error
