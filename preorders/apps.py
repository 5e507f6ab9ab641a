from django.apps import AppConfig


class PreordersConfig(AppConfig):
    name = "preorders"
    verbose_name = "Pre-orders"
