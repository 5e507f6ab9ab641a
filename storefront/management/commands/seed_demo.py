from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from storefront.demo import demo_seed


class Command(BaseCommand):
    help = "Create the demo data (idempotent: running it again changes nothing)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--allow-production",
            action="store_true",
            help="Seed even though DEBUG is off (demo logins have a published password).",
        )

    def handle(self, *args, allow_production: bool = False, **options):
        if not settings.DEBUG and not allow_production:
            raise CommandError(
                "Refusing to seed demo accounts with DEBUG off; "
                "pass --allow-production if you really mean it."
            )
        summary = demo_seed()
        created = ", ".join(f"{n} {what}" for what, n in summary.created.items())
        self.stdout.write(self.style.SUCCESS(f"Demo data ready (new: {created})."))
        if options["verbosity"] >= 1:
            self.stdout.write("Demo logins:")
            for role, email, password in summary.logins:
                if role != "fan" or email == summary.logins[-1][1]:
                    self.stdout.write(f"  {role:<28} {email:<24} {password}")
            self.stdout.write("  (all fans *@fans.example use the same password)")
