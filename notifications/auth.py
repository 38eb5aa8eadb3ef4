"""Who is on the other end of a WebSocket, and whether their Origin may connect.

Two ways in, never mixed:
- a session cookie, which browsers attach to any site's socket, so the Origin
  must be one of ALLOWED_HOSTS (this refuses cross-site WebSocket hijacking);
- a `?ticket=` (see tickets.py), which is a credential by itself, so it may
  also come from NOTIFICATIONS_TICKET_ORIGINS or without an Origin (native apps).
  The session cookie is ignored on this path.
"""

from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.auth import AuthMiddlewareStack
from channels.security.websocket import AllowedHostsOriginValidator, OriginValidator
from django.conf import settings
from django.contrib.auth.models import AnonymousUser

from notifications import tickets


def _ticket(scope: dict) -> str | None:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return query.get("ticket", [None])[0]


class TicketOriginValidator(OriginValidator):
    """Allows the listed origins, and no Origin at all."""

    def valid_origin(self, parsed_origin) -> bool:
        return parsed_origin is None or self.validate_origin(parsed_origin)


class TicketAuthMiddleware:
    """Sets scope["user"] from the ticket: the ticket's user, or anonymous."""

    def __init__(self, inner) -> None:
        self.inner = inner

    async def __call__(self, scope, receive, send):
        user = await sync_to_async(tickets.redeem)(_ticket(scope) or "")
        scope = dict(scope, user=user or AnonymousUser(), auth="ticket")
        return await self.inner(scope, receive, send)


class TicketOrSession:
    def __init__(self, inner) -> None:
        self.by_ticket = TicketOriginValidator(
            TicketAuthMiddleware(inner),
            [*settings.ALLOWED_HOSTS, *settings.NOTIFICATIONS_TICKET_ORIGINS],
        )
        self.by_session = AllowedHostsOriginValidator(AuthMiddlewareStack(inner))

    async def __call__(self, scope, receive, send):
        app = self.by_ticket if _ticket(scope) is not None else self.by_session
        return await app(scope, receive, send)
