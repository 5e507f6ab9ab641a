from urllib.parse import urlsplit

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context as allauth_context
from django.conf import settings
from django.contrib.sites.models import Site

from notifications.services import email_send_on_commit


def site_from_settings() -> Site:
    """The site as emails name it, from settings (not the sites table, which a flush or a
    fresh database resets to example.com)."""
    return Site(domain=urlsplit(settings.SITE_URL).netloc, name=settings.SITE_NAME)


class AccountAdapter(DefaultAccountAdapter):
    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        """As allauth's, but delivered by a Celery worker once the transaction commits.
        Rendered here, because the context holds live objects (request, user, site)."""
        full_context = {
            "request": allauth_context.request,
            "email": email,
            "current_site": site_from_settings(),
            **context,
        }
        message = self.render_mail(template_prefix, email, full_context)
        email_send_on_commit(message=message)
