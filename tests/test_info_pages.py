"""Help, contact, shipping and returns, terms and privacy: linked from every page's footer,
written by the superuser in the admin (Markdown, sanitized), seeded with a starting text."""

import pytest
from django.urls import reverse

from storefront.info_pages import DEFAULT_PAGES, page_save, pages_seed
from storefront.models import Page
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
PATHS = ["/help/", "/contact/", "/shipping/", "/terms/", "/privacy/"]


def test_every_page_answers_and_the_footer_links_them_all(client):
    footer = client.get("/").content.decode().split('<footer class="site-footer">', 1)[1]
    for path in PATHS:
        assert f'href="{path}"' in footer
        response = client.get(path)
        assert response.status_code == 200, path  # the starting text, before any is saved
    assert "Shipping and returns" in client.get("/shipping/").content.decode()
    assert client.get("/about-us/").status_code == 404


def test_seeding_writes_each_page_once_and_keeps_edits():
    assert pages_seed() == len(DEFAULT_PAGES)
    page = Page.objects.get(slug="contact")
    page.body = "Call **us**."
    page_save(page=page)
    assert pages_seed() == 0
    assert Page.objects.get(slug="contact").body_html == "<p>Call <strong>us</strong>.</p>"


def test_the_superuser_edits_a_page_in_the_admin_and_the_markup_is_sanitized(client):
    pages_seed()
    page = Page.objects.get(slug="help")
    admin = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(admin)
    url = reverse("admin:storefront_page_change", args=[page.pk])
    response = client.post(
        url,
        {
            "slug": "help",
            "title": "Help centre",
            "summary": "Answers.",
            "body": "Ask <script>alert(1)</script> [us](javascript:alert(1)) or [mail](/contact/)",
        },
    )
    assert response.status_code == 302
    html = client.get("/help/").content.decode()
    assert "Help centre" in html and '<a href="/contact/"' in html
    assert "<script>alert" not in html and "javascript:alert" not in html


def test_an_operator_cannot_edit_the_site_pages(client):
    pages_seed()
    operator = UserFactory(is_staff=True)
    client.force_login(operator)
    page = Page.objects.get(slug="terms")
    assert client.get(reverse("admin:storefront_page_change", args=[page.pk])).status_code in (
        302,
        403,
    )


def test_the_check_your_email_page_resends_and_links_contact(client):
    response = client.post(
        reverse("account_signup"),
        {
            "email": "new@example.com",
            "display_name": "Newcomer",
            "password1": "a-long-pass-phrase-42",
            "password2": "a-long-pass-phrase-42",
        },
        follow=True,
    )
    html = response.content.decode()
    assert "Check your email" in html
    assert 'href="/contact/"' in html and reverse("account_login") in html
    assert "Send the link again" in html


def test_signing_in_unconfirmed_sends_the_link_again(client, django_capture_on_commit_callbacks):
    from datetime import timedelta

    import time_machine
    from django.core import mail
    from django.utils import timezone

    data = {"display_name": "Newcomer", "password1": "a-long-pass-phrase-42"}
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("account_signup"),
            {**data, "email": "new@example.com", "password2": data["password1"]},
        )
    sent = len(mail.outbox)
    assert sent >= 1
    later = time_machine.travel(timezone.now() + timedelta(minutes=4))
    with later, django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("account_login"),
            {"login": "new@example.com", "password": data["password1"]},
            follow=True,
        )
    assert "Check your email" in response.content.decode()
    assert len(mail.outbox) == sent + 1 and mail.outbox[-1].to == ["new@example.com"]
