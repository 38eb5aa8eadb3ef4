"""`manage.py notify "Title" --user alice --group staff --all`: an operator's notice."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser

from notifications import notify_many
from notifications.models import Level
from notifications.users import active_users

EXIT_UNKNOWN_TARGET = 1
EXIT_BAD_INPUT = 2


class Command(BaseCommand):
    help = "Send a notification to users, members of groups, or every active user."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("title")
        parser.add_argument(
            "--user",
            action="append",
            default=[],
            help="the user's USERNAME_FIELD value, e.g. username or email (repeatable)",
        )
        parser.add_argument("--group", action="append", default=[], help="auth group (repeatable)")
        parser.add_argument("--all", action="store_true", help="every active user")
        parser.add_argument("--body", default="")
        parser.add_argument("--level", default=Level.INFO, choices=Level.values)
        parser.add_argument("--url", default="")
        parser.add_argument(
            "--kind",
            default="",
            help="what it is about, e.g. export (people choose channels per kind)",
        )

    def handle(self, *args, **options) -> None:
        recipients = self.recipients(options["user"], options["group"], options["all"])
        try:
            sent = notify_many(
                recipients,
                options["title"],
                body=options["body"],
                level=options["level"],
                url=options["url"],
                kind=options["kind"],
            )
        except ValueError as exc:
            raise CommandError(str(exc), returncode=EXIT_BAD_INPUT) from None
        self.stdout.write(f"Notified {len(sent)} user{'s' if len(sent) != 1 else ''}.")

    def recipients(self, usernames: list[str], groups: list[str], everyone: bool) -> list[int]:
        """Active user ids for the targets; every unknown name is reported at once."""
        if not (usernames or groups or everyone):
            raise CommandError("name a target: --user, --group or --all", returncode=EXIT_BAD_INPUT)
        model = get_user_model()
        users = active_users()
        # Whatever the user model signs in with (USERNAME_FIELD), e.g. an email.
        field = model.USERNAME_FIELD
        found = dict(users.filter(**{f"{field}__in": usernames}).values_list(field, "pk"))
        known_groups = set(Group.objects.filter(name__in=groups).values_list("name", flat=True))
        unknown = [f"user {name!r}" for name in usernames if name not in found]
        unknown += [f"group {name!r}" for name in groups if name not in known_groups]
        if unknown:
            raise CommandError(
                f"unknown or inactive {', '.join(unknown)}; nothing was sent",
                returncode=EXIT_UNKNOWN_TARGET,
            )
        ids = set(found.values())
        if groups:
            ids |= set(users.filter(groups__name__in=groups).values_list("pk", flat=True))
        if everyone:
            ids |= set(users.values_list("pk", flat=True))
        return sorted(ids)
