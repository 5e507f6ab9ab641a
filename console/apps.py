from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The brand operators' console in the admin: the dashboard, the audit log pages, the
    customers. Composition (layer 5): reads every app's selectors."""

    name = "console"
    default_auto_field = "django.db.models.BigAutoField"
