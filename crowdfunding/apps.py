from django.apps import AppConfig


class CrowdfundingConfig(AppConfig):
    name = "crowdfunding"
    verbose_name = "Crowdfunding"
