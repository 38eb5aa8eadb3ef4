"""Opening sockets on the project's real ASGI stack (origin check, auth, consumer)."""

from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from config.asgi import application

ORIGIN = (b"origin", b"http://127.0.0.1")


@sync_to_async
def session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def open_socket(user=None, path="/ws/notifications/", origin=ORIGIN):
    """(communicator, connected, close code); `user` signs in by session cookie."""
    headers = [origin] if origin else []
    if user is not None:
        headers.append((b"cookie", await session_cookie(user)))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await communicator.connect(timeout=5)
    return communicator, connected, code
