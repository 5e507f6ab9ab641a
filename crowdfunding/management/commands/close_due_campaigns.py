from django.core.management.base import BaseCommand

from crowdfunding.services import campaigns_close_due


class Command(BaseCommand):
    help = "Close the live campaigns past their deadline (what the beat task does every minute)."

    def handle(self, *args, **options):
        closed = campaigns_close_due()
        self.stdout.write(f"{closed} campaign{'s' if closed != 1 else ''} closed")
