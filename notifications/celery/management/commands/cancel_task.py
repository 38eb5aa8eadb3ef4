"""`manage.py cancel_task <task_id>`: an operator cancels a task, as its user could."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from notifications.celery.cancel import cancel

EXIT_UNKNOWN_TASK = 1


class Command(BaseCommand):
    help = "Cancel a task started for a user: they get one warning, and the worker stops it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("task_id")

    def handle(self, *args, **options) -> None:
        task_id = options["task_id"]
        if not cancel(task_id):
            raise CommandError(f"unknown task {task_id!r}", returncode=EXIT_UNKNOWN_TASK)
        self.stdout.write(f"Cancelled task {task_id}.")
