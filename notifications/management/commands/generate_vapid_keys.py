"""`manage.py generate_vapid_keys [--python]`: a new key pair for Web Push."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from notifications.push import new_vapid_keys


class Command(BaseCommand):
    help = (
        "Print a new VAPID key pair as the NOTIFICATIONS_VAPID_* settings take it: "
        "environment lines (the demo's settings read them), or Python with --python. "
        "Keep the private key secret; changing the pair orphans every registered device."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--python", action="store_true", help="print settings.py lines")

    def handle(self, *args, python: bool, **options) -> None:
        try:
            public, private = new_vapid_keys()
        except ImportError:
            raise CommandError(
                "the cryptography library is missing: pip install 'django-celery-notify[push]'"
            ) from None
        for name, value in (("PUBLIC", public), ("PRIVATE", private)):
            if python:
                self.stdout.write(f'NOTIFICATIONS_VAPID_{name}_KEY = "{value}"')
            else:
                self.stdout.write(f"NOTIFICATIONS_VAPID_{name}_KEY={value}")
