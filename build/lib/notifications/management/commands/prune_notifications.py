"""`manage.py prune_notifications [--days N]`: delete old read notifications now."""

from django.core.management.base import BaseCommand, CommandParser

from notifications.conf import app_settings
from notifications.retention import prune_read


class Command(BaseCommand):
    help = "Delete notifications read more than --days ago (unread ones are always kept)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=float, default=app_settings.RETENTION_DAYS)

    def handle(self, *args, days: float, **options) -> None:
        if days < 0:
            self.stderr.write("--days must not be negative")
            raise SystemExit(2)
        deleted = prune_read(days)
        self.stdout.write(f"Deleted {deleted} read notification(s) older than {days:g} days.")
