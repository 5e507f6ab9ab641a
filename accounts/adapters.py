import ipaddress
from typing import Any
from urllib.parse import urlsplit

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context as allauth_context
from allauth.core.internal import ratelimit
from django.conf import settings
from django.contrib import messages
from django.contrib.sites.models import Site
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.http import HttpRequest

from accounts.models import User
from notifications.services import email_send_on_commit


def site_from_settings() -> Site:
    """The site as emails name it, from settings (not the sites table, which a flush or a
    fresh database resets to example.com)."""
    return Site(domain=urlsplit(settings.SITE_URL).netloc, name=settings.SITE_NAME)


def _ip_or_none(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip().strip("[]")))
    except ValueError:
        return None


def request_client_ip(request: HttpRequest) -> str | None:
    """The client's address. With TRUSTED_PROXY_COUNT = n > 0, the n-th X-Forwarded-For
    entry from the right: each trusted proxy appends the address it saw, so entries further
    left were written by the client and prove nothing. With 0 (no proxy in front), the
    header is ignored and the socket's address counts."""
    remote = _ip_or_none(request.META.get("REMOTE_ADDR", ""))
    count = settings.TRUSTED_PROXY_COUNT
    header = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if count <= 0 or not header:
        return remote
    hops = [hop for hop in (part.strip() for part in header.split(",")) if hop]
    if not hops:
        return remote
    # Fewer entries than proxies: the leftmost is what the outermost proxy saw.
    return _ip_or_none(hops[-count] if len(hops) >= count else hops[0]) or remote


class AccountAdapter(DefaultAccountAdapter):
    error_messages = {
        **DefaultAccountAdapter.error_messages,
        "too_many_login_attempts": (
            "Too many failed login attempts for this account. Sign in with a code sent to "
            "your email instead, or reset your password."
        ),
    }

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

    def save_user(self, request: HttpRequest, user: User, form, commit: bool = True) -> User:
        """The display name chosen on the sign-up form (already cleaned and checked there).
        Taken by another sign-up in the moment between the check and the save (the unique
        index says so): the account is made without it, and the member is asked to choose
        again, instead of an error page."""
        user.display_name = form.cleaned_data.get("display_name", "")
        user.handle = form.cleaned_data.get("handle", "")  # empty: User.save() makes one
        if not commit or not user.display_name:
            return super().save_user(request, user, form, commit=commit)
        try:
            with transaction.atomic():
                return super().save_user(request, user, form, commit=commit)
        except IntegrityError:
            if not user.display_name or User.objects.filter(email__iexact=user.email).exists():
                raise  # not the name: let allauth's own handling (or the error) show
            user.pk = None
            user.display_name = ""
            user.handle = ""
            messages.warning(
                request,
                "Someone took that name or handle a moment before you. Choose another on "
                "your profile.",
            )
            return super().save_user(request, user, form, commit=commit)

    # --- Sign-in rate limits ------------------------------------------------------------
    # Failed logins are counted per account AND address ("login_failed": the key below), so
    # wrong passwords for account A from one address never refuse account B behind the same
    # address, nor A from anywhere else. Over every address together, an account has a
    # ceiling ("login_failed_account") against guessing from many addresses; past it the
    # password is not checked, and the mailed sign-in code (which no attacker can exhaust)
    # or a password reset still lets the owner in.

    def get_client_ip(self, request: HttpRequest) -> str:
        ip = request_client_ip(request)
        if not ip:
            raise PermissionDenied("Unable to determine client IP address")
        return ip

    def _login_of(self, request: HttpRequest, **credentials: Any) -> str:
        return super()._get_login_attempts_cache_key(request, **credentials)

    def _get_login_attempts_cache_key(self, request: HttpRequest, **credentials: Any) -> str:
        return f"{self._login_of(request, **credentials)}|{ratelimit.get_ip(request)}"

    def pre_authenticate(self, request: HttpRequest, **credentials: Any) -> None:
        super().pre_authenticate(request, **credentials)  # per account and address
        account_usage = ratelimit.consume(
            request,
            app="allauth.account",
            action="login_failed_account",
            key=self._login_of(request, **credentials),
        )
        if not account_usage:
            self._rollback_login_failed_rl_usage()
            raise self.validation_error("too_many_login_attempts")
        # allauth rolls this back when the password is right: a success costs nothing.
        self._login_failed_rl_usage.usage.extend(account_usage.usage)

    def _delete_login_attempts_cached_email(self, request: HttpRequest, **credentials: Any) -> None:
        """After a password reset: the new password works at once, from this address and
        past the account's ceiling."""
        super()._delete_login_attempts_cached_email(request, **credentials)
        ratelimit.clear(
            request,
            app="allauth.account",
            action="login_failed_account",
            key=self._login_of(request, **credentials),
        )
