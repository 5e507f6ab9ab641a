from django.apps import AppConfig


class FormattingConfig(AppConfig):
    name = "formatting"
    verbose_name = "Money and date formats"
