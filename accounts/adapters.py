from allauth.account.adapter import DefaultAccountAdapter

from notifications.services import email_send_on_commit


class AccountAdapter(DefaultAccountAdapter):
    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        """Render now (the context holds live objects), deliver from a Celery worker."""
        message = self.render_mail(template_prefix, email, context)
        email_send_on_commit(message=message)
