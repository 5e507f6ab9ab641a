"""`manage.py close_due_batches`: what the beat does every minute, by hand. Scheduled batches
whose window has started open; open batches that are due (closing time passed, or full and set
to close when full) close and start their settlement."""

from django.core.management.base import BaseCommand

from preorders.services import batches_close_due, batches_open_due


class Command(BaseCommand):
    help = (
        "Open scheduled batches whose window has started and close the open batches that are due."
    )

    def handle(self, *args, **options):
        opened = batches_open_due()
        closed = batches_close_due()
        self.stdout.write(
            self.style.SUCCESS(f"{opened} batch(es) opened, {closed} batch(es) closed.")
        )
